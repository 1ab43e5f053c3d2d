"""Issue 15 end to end: a real OpenID Connect provider (oidc-provider-mock) on 127.0.0.1, the real
app (`python -m ui.serve`) with an `[auth]` section pointing at it, and Chromium. An annotator signs
in, makes a correction on the Review page and sees their identity in its history; a viewer signs in
and is refused the correction and a promotion; a maintainer signs in and promotes."""
from __future__ import annotations

import os

import pytest

from benchmarks.app_bench import wait_run_ended
from labels import Ledger

USERS = [
    {"sub": "alice", "email": "alice@example.org", "name": "Alice Annotator"},
    {"sub": "vic", "email": "vic@example.org", "name": "Vic Viewer"},
    {"sub": "mo", "email": "mo@example.org", "name": "Mo Maintainer"},
    {"sub": "ann", "email": "ann@example.org", "name": "Ann Annotator"},
]
ROLES = {"alice@example.org": "annotator", "mo@example.org": "maintainer", "ann@example.org": "annotator"}


def _publish_candidate(workspace) -> None:
    """digits v2, a candidate (v1's weights republished: cheaper than a retrain, the same to the pages)."""
    from dataclasses import replace

    from models import store

    before = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = str(workspace)
    try:
        info = store.manifest("digits")
        store.publish_version("digits", store.load("digits").keras_model,
                              replace(info, lineage=replace(info.lineage, parent="v1"), created_as="candidate"))
    finally:
        if before is None:
            os.environ.pop("WORKBENCH_HOME", None)
        else:
            os.environ["WORKBENCH_HOME"] = before


@pytest.fixture(scope="module")
def provider():
    """A real OpenID Connect provider on 127.0.0.1 (oidc-provider-mock) with the users above."""
    pytest.importorskip("oidc_provider_mock")
    from benchmarks.team_load import OidcProvider

    with OidcProvider(USERS) as running:
        yield running.url


def _serve(root, provider: str, **extra_env: str):
    """The real app with [auth] pointing at `provider` and the roles above, in its own workspace."""
    from benchmarks.team_load import SignedInAppServer

    workspace = root / "workspace"
    _publish_candidate(workspace)
    with SignedInAppServer(provider, ROLES, workspace=workspace, env=extra_env) as server:
        server.wait_healthy()
        yield {"url": server.url, "workspace": workspace, "log": server.log_path}


@pytest.fixture(scope="module")
def signed_in_app(provider, tmp_path_factory, chromium_path):
    yield from _serve(tmp_path_factory.mktemp("sign-in"), provider)


@pytest.fixture(scope="module")
def team_app(provider, tmp_path_factory, chromium_path):
    """The app with its ledger on PostgreSQL (a fresh schema; skipped without WORKBENCH_TEST_POSTGRES_URL)."""
    from tests.labels.conftest import _postgres_schema_url

    schema_urls = _postgres_schema_url()
    url = next(schema_urls)
    try:
        for app in _serve(tmp_path_factory.mktemp("team"), provider, WORKBENCH_DATABASE_URL=url):
            yield dict(app, database_url=url)
    finally:
        schema_urls.close()  # drops the schema


def _sign_in(browser, app: dict, sub: str):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(app["url"], wait_until="domcontentloaded")
    _click(page, "Sign in")
    # The provider's authorisation form: one button per predefined user.
    page.locator(f'button[name="sub"][value="{sub}"]').click()
    page.wait_for_url(f"{app['url']}/**")
    page.get_by_text("Signed in as").wait_for()
    return context, page


def _click(page, name: str) -> None:
    """Click the enabled button named `name` (while Streamlit reruns, the old one can linger, disabled)."""
    page.locator("button:enabled", has_text=name).first.click()


def _open_review(page, app: dict) -> None:
    page.goto(f"{app['url']}/review", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Review labels").wait_for()
    page.locator("button", has_text="Keep label").first.wait_for(timeout=240_000)  # the audit ranks the queue first
    wait_run_ended(page)


def _shown(page, app: dict, text: str) -> None:
    """Wait for `text` and for the run that drew it to end; on a timeout, fail with what the page and
    the server's log showed instead."""
    try:
        page.get_by_text(text).first.wait_for()
        wait_run_ended(page)
    except Exception as exc:
        main = page.locator('[data-testid="stMain"]').inner_text(timeout=5_000)[:2000]
        log = app["log"].read_text(errors="replace")[-3000:]
        raise AssertionError(f"{text!r} not shown ({exc.__class__.__name__}).\nPage:\n{main}\nServer log:\n{log}") from None


def test_an_annotator_signs_in_corrects_and_sees_themself_in_the_history(browser, signed_in_app):
    context, page = _sign_in(browser, signed_in_app, "alice")
    try:
        assert page.get_by_text("role: annotator").count() >= 1
        assert page.get_by_label("Your name (for label corrections)").count() == 0  # no name box
        _open_review(page, signed_in_app)
        _click(page, "Keep label")
        _shown(page, signed_in_app, "Saved:")
        _click(page, "Undo last")  # the example comes back with its history
        _shown(page, signed_in_app, "Undone:")
        events = Ledger(f"sqlite:///{signed_in_app['workspace'] / 'labels.sqlite'}").history("digits")
        assert [(e.action, e.annotator, e.actor_subject, e.actor_email, e.actor_role) for e in events] == [
            ("undo", "Alice Annotator", "alice", "alice@example.org", "annotator"),
            ("set", "Alice Annotator", "alice", "alice@example.org", "annotator")]
        # The example's history, in its expander: a data grid, whose cells are in its accessible table.
        page.get_by_text("History of this example").click()
        grid = page.locator('[data-testid="stExpander"] [data-testid="stDataFrame"]').first
        grid.wait_for(state="visible")
        page.wait_for_function(
            "el => el.textContent.includes('alice@example.org')", arg=grid.element_handle(), timeout=30_000)
        cells = grid.text_content()
        assert "alice@example.org" in cells and "annotator" in cells and "Alice Annotator" in cells
    finally:
        context.close()


def test_a_viewer_signs_in_and_is_refused_a_correction(browser, signed_in_app):
    context, page = _sign_in(browser, signed_in_app, "vic")
    try:
        assert page.get_by_text("role: viewer").count() >= 1
        _open_review(page, signed_in_app)
        # Said twice: above the decision buttons and in the folded reason panel (hidden): wait for the visible one.
        page.get_by_text("vic@example.org is a viewer; correcting labels needs the annotator role").locator("visible=true").first.wait_for()
        assert page.get_by_role("button", name="Keep label").is_disabled()
        assert page.get_by_role("button", name="Ambiguous").is_disabled()
        page.goto(f"{signed_in_app['url']}/compare_versions", wait_until="domcontentloaded")
        page.get_by_text("vic@example.org is a viewer; promoting a model version needs the maintainer role").wait_for()
        assert page.get_by_role("button", name="✅ Promote v2").is_disabled()
    finally:
        context.close()


def test_a_maintainer_signs_in_and_promotes(browser, signed_in_app):
    import json

    context, page = _sign_in(browser, signed_in_app, "mo")
    try:
        page.goto(f"{signed_in_app['url']}/compare_versions", wait_until="domcontentloaded")
        page.locator("button:enabled", has_text="✅ Promote v2").first.wait_for()
        wait_run_ended(page)
        _click(page, "✅ Promote v2")
        _shown(page, signed_in_app, "Promote v2: done.")
        log = signed_in_app["workspace"] / "models" / "digits" / "promotions.jsonl"
        (event,) = [json.loads(line) for line in log.read_text().splitlines()]
        assert (event["action"], event["version"], event["by"]) == ("promote", "v2", "Mo Maintainer")
        assert {key: event["actor"][key] for key in ("subject", "email", "role", "signed_in")} == {
            "subject": "mo", "email": "mo@example.org", "role": "maintainer", "signed_in": True}
        page.get_by_text("Who changed the versions of digits").click()  # the page shows who, too
        grid = page.locator('[data-testid="stExpander"] [data-testid="stDataFrame"]').first
        grid.wait_for(state="visible")
        page.wait_for_function("el => el.textContent.includes('mo@example.org')", arg=grid.element_handle(),
                               timeout=30_000)
        assert "maintainer" in grid.text_content() and "Mo Maintainer" in grid.text_content()
    finally:
        context.close()


@pytest.mark.postgres
def test_two_annotators_review_the_same_queue_at_once_on_postgresql(browser, team_app):
    """Both open the top of the queue; Alice decides first; Ann's decision on the same example is a
    conflict she sees (with Alice named), and keeping Alice's stores nothing; each decision is stored
    once, attributed to its author."""
    alice_context, alice = _sign_in(browser, team_app, "alice")
    ann_context, ann = _sign_in(browser, team_app, "ann")
    try:
        _open_review(alice, team_app)
        _open_review(ann, team_app)
        _click(alice, "Keep label")
        _shown(alice, team_app, "Saved:")
        _click(ann, "Keep label")  # the same example, opened before Alice's decision
        _shown(ann, team_app, "Since you opened")
        conflict = ann.locator('[data-testid="stAlert"]').filter(has_text="Since you opened").first.inner_text()
        assert "Alice Annotator (alice@example.org)" in conflict
        _click(ann, "Keep theirs")
        ann.locator("button:enabled", has_text="Keep label").first.wait_for(timeout=240_000)  # slow when the machine is busy
        wait_run_ended(ann)
        _click(ann, "Keep label")  # the next example: no conflict
        _shown(ann, team_app, "Saved:")
        ledger = Ledger(team_app["database_url"])
        events = list(reversed(ledger.history("digits")))
        assert [(e.annotator, e.actor_email, e.actor_role, e.action) for e in events] == [
            ("Alice Annotator", "alice@example.org", "annotator", "set"),
            ("Ann Annotator", "ann@example.org", "annotator", "set")]
        assert events[0].example_id != events[1].example_id  # Alice's example was not written twice
        # Alice sees Ann's decision on her next rerun: the progress counts both.
        alice.reload(wait_until="domcontentloaded")
        alice.get_by_text("2 of 1258 reviewed").wait_for()
    finally:
        alice_context.close()
        ann_context.close()
