"""AppTest helpers: start the real app (app.py) on a chosen page with chosen state."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP_PATH = str(Path(__file__).resolve().parents[2] / "app.py")


def start_app(page: str | None = None, timeout: float = 180, **state) -> AppTest:
    at = AppTest.from_file(APP_PATH, default_timeout=timeout)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page:
        at.switch_page(page).run()
    return at


@pytest.fixture
def make_app():
    return start_app


def decision_button(at: AppTest, name: str):
    """The Review page's decision button `name` (its key is bound to the example on screen)."""
    from ui.review_widgets import decision_key

    return at.button(key=decision_key(name, at.session_state["review_current"]))
