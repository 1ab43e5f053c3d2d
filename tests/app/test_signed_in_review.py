"""Issue 15 in the app (AppTest, with Streamlit's seeded `st.user`): with `[auth]` configured nobody
sees a page before signing in, the sidebar's name box is gone, an annotator's correction is stored
with their identity and shown in the history, and a viewer is refused in the page and the core."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from foundation import access
from labels import Ledger
from tests.app.conftest import APP_PATH, decision_button

PAGE = "pages/review.py"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "test-secret-0123456789",
        "client_id": "workbench", "client_secret": "s",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


@pytest.fixture
def roles(tmp_path, monkeypatch):
    path = tmp_path / "roles.toml"
    path.write_text('default = "viewer"\n[users]\n"alice@example.org" = "annotator"\n')
    monkeypatch.setenv(access.ROLES_ENV, str(path))


def _app(user: dict | None, page: str | None = PAGE) -> AppTest:
    at = AppTest.from_file(APP_PATH, default_timeout=180)
    at.secrets["auth"] = AUTH
    at.user = user or {"is_logged_in": False}
    at.session_state["any_model"] = "digits"
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


ALICE = {"is_logged_in": True, "sub": "oidc|alice", "email": "alice@example.org", "name": "Alice"}
VIC = {"is_logged_in": True, "sub": "oidc|vic", "email": "vic@example.org", "name": "Vic"}


def test_nothing_is_shown_before_signing_in(workspace, roles):
    at = _app(None, page=None)
    assert [b.label for b in at.button] == ["Sign in"]
    assert at.title[0].value.endswith("Explainability Workbench")
    assert not at.sidebar.selectbox  # no model picker, no page


def test_the_sidebar_names_the_signed_in_person_and_has_no_name_box(workspace, roles):
    # AppTest drops app.py's sidebar after switch_page, so it is read on the default page.
    at = _app(ALICE, page=None)
    assert at.sidebar.selectbox  # the model picker: the gate let Alice in
    assert not [t for t in at.sidebar.text_input if t.key == "annotator"]  # no box to type anyone's name
    assert "Signed in as **alice\\@example\\.org** · role: **annotator**" in " ".join(c.value for c in at.sidebar.caption)
    assert [b.label for b in at.sidebar.button] == ["Sign out"]


def test_without_sign_in_the_sidebar_says_single_person_mode(workspace, monkeypatch):
    monkeypatch.delenv(access.ROLES_ENV, raising=False)
    monkeypatch.setenv(access.OPERATOR_ENV, "olga")
    at = AppTest.from_file(APP_PATH, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert [t.key for t in at.sidebar.text_input] == ["annotator"]
    assert any("Single-person mode" in c.value and "**olga** · role: **admin**" in c.value for c in at.sidebar.caption)


def test_an_annotator_corrects_and_the_history_says_who(workspace, roles):
    at = _app(ALICE)
    shown = at.session_state["review_current"]["example_id"]
    decision_button(at, "review_take_model").click().run()
    assert not at.exception, at.exception
    event = Ledger().latest_event("digits", shown)
    assert (event.annotator, event.actor_subject, event.actor_email, event.actor_role) == (
        "Alice", "oidc|alice", "alice@example.org", "annotator")
    at.button(key="review_undo").click().run()  # the example comes back, with its history
    assert not at.exception, at.exception
    history = next(df.value for df in at.dataframe if "who" in df.value.columns)
    assert set(history["e-mail"]) == {"alice@example.org"} and set(history["role"]) == {"annotator"}
    assert list(history["action"]) == ["undo", "set"]


def test_a_viewer_is_refused_in_the_page(workspace, roles):
    at = _app(VIC)
    warning = " ".join(w.value for w in at.warning)
    assert "vic@example.org is a viewer; correcting labels needs the annotator role" in warning
    for key in ("review_keep", "review_take_model", "review_ambiguous", "review_apply_other"):
        assert decision_button(at, key).disabled
    assert Ledger().count("digits") == 0


def test_a_viewer_cannot_save_the_table_either(workspace, roles):
    at = _app(VIC)
    at.radio(key="review_mode").set_value("Table").run()
    assert not at.exception, at.exception
    assert any("vic@example.org is a viewer; correcting labels" in w.value for w in at.warning)
    assert at.button(key="review_table_save").disabled


def test_a_viewer_sees_the_lesson_fix_refused(workspace, roles):
    at = _app(VIC, page="pages/learn.py")
    warning = " ".join(w.value for w in at.warning)
    assert "vic@example.org is a viewer; retraining a model needs the maintainer role" in warning
    assert at.button(key="learn_fix_start").disabled
