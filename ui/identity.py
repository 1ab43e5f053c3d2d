"""Who is using the app: the signed-in person (Streamlit's OpenID Connect sign-in) or the local operator.

Sign-in is on when `.streamlit/secrets.toml` has an `[auth]` section (see /work/notes or the README:
redirect_uri http://HOST:PORT/oauth2callback, cookie_secret, client_id, client_secret,
server_metadata_url). Then nobody sees a page before signing in (`gate`), the sidebar shows who is
signed in with which role, and every write passes that identity to the core, which checks the role
(foundation/access.py). Without `[auth]` the app is a single-person tool bound to 127.0.0.1
(ui/serve.py): the person is the local operator (WORKBENCH_OPERATOR or the OS user), and the
sidebar says so.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from foundation import access
from foundation.access import Identity
from foundation.errors import WorkbenchError
from foundation.escaping import markdown_literal


def sign_in_configured() -> bool:
    """True when the secrets have an `[auth]` section (Streamlit's sign-in is configured)."""
    try:
        return bool(st.secrets.get("auth"))
    except Exception:  # no secrets file at all: Streamlit raises rather than returning nothing
        return False


def _claim(name: str) -> Any:
    try:
        return st.user.get(name)
    except Exception:
        return None


def current() -> Identity:
    """The person using this session, with the role the roles file gives them.

    Raises WorkbenchError when sign-in is on and nobody is signed in (`gate` stops such a run
    before any page, so only a stray callback could get here), or when the roles file is broken.
    """
    if not sign_in_configured():
        return access.local_operator()
    if not _claim("is_logged_in"):
        raise WorkbenchError("Sign in first: this workbench needs sign-in for every change.")
    groups = _claim("groups") or ()
    if isinstance(groups, str):
        groups = [groups]
    subject = _claim("sub") or _claim("email")
    return access.signed_in(str(subject), _claim("email"), _claim("name") or _claim("preferred_username"),
                            groups=groups)


def gate() -> None:
    """With sign-in on: stop the run with a sign-in button unless someone is signed in."""
    if not sign_in_configured() or _claim("is_logged_in"):
        return
    st.title("🔍 Explainability Workbench")
    st.write("This workbench is shared by a team: sign in with your organisation's account to continue.")
    if st.button("Sign in", type="primary", key="identity_sign_in"):
        st.login()
    st.stop()


def sidebar_box() -> None:
    """Who you are and what your role lets you do; the sign-out button when signed in."""
    try:
        person = current()
    except WorkbenchError as error:  # e.g. a broken roles file: say so, and let pages refuse writes
        st.sidebar.error(str(error), icon="⚠️")
        return
    if person.signed_in:
        st.sidebar.caption(f"Signed in as **{markdown_literal(person.label, one_line=True)}** · role: **{person.role}**")
        if st.sidebar.button("Sign out", key="identity_sign_out"):
            st.logout()
    else:
        st.sidebar.caption(f"Single-person mode (no sign-in, this computer only): you are the local operator "
                           f"**{markdown_literal(person.name, one_line=True)}** · role: **{person.role}**")


def refusal(action: str) -> str | None:
    """Why the current person may not do `action` (one sentence), or None when they may."""
    try:
        current().require(action)
    except WorkbenchError as error:
        return str(error)
    return None

