"""Start the app: `python -m ui.serve [streamlit options]` (what `make run` does).

Why not plain `streamlit run app.py`: the design fixes the page folder's name as `pages/`,
and Streamlit treats a `pages/` folder beside the entry point as a legacy multipage app until
`st.navigation` has run once in the process. The first visitor who opens a deep link
(e.g. /explain_image) then gets that page without the router: Streamlit's automatic page
list, no model picker. Declaring up front that this app routes with `st.navigation` makes
every first request go through app.py.

Before Streamlit starts, the server's slow start-up begins in the background
(workbench/preload.py: TensorFlow, the default model, its first Grad-CAM), so the first
visitor's page finds them ready instead of paying for them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from workbench import preload

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(argv: list[str] | None = None) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    PagesManager.uses_pages_directory = False
    preload.start()
    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
