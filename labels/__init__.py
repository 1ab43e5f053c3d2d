"""Labels: the append-only ledger of human label corrections (SQLite or PostgreSQL).

    from labels import Ledger
    ledger = Ledger()                      # foundation.config.database_url()
    seen = ledger.latest_event("pets", "img_7")
    ledger.record("pets", "img_7", "cat", expected_event_id=seen.id if seen else None,
                  annotator="alice")
"""
from labels.importer import ImportProblem, ImportReport
from labels.ledger import Ledger, StaleEditError
from labels.schema import ACTIONS, LabelEvent

__all__ = ["ACTIONS", "ImportProblem", "ImportReport", "LabelEvent", "Ledger", "StaleEditError"]
