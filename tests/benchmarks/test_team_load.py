"""Issue 15's load check (benchmarks/team_load.py): its figures' arithmetic, and a small real run
(the local OpenID Connect provider, the signed-in app, Chromium: 2 annotators, one round each)."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import app_bench, team_load

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "team_load"
FIGURE_KEYS = {"n", "median_s", "p95_s", "max_s"}
RUN_KEYS = {"sessions", "rounds", "interactions", "expected_interactions", "errors", "error_messages",
            "filter_repicks", "pages",
            "overall", "sign_in", "per_session", "wall_s", "load_average_start", "load_average_end", "server_rss_mb_end"}


def test_summary_counts_every_interaction_and_takes_median_and_p95_per_page():
    first = team_load.SessionLog("a", [("review_open", 1.0), ("review_filter", 2.0), ("review_decision", 3.0),
                                       ("explain_open", 4.0)], sign_in_s=5.0, repicks=1)
    second = team_load.SessionLog("b", [("review_open", 3.0)], sign_in_s=7.0,
                                  errors=["review_filter: Timeout: the filtered queue's progress (not within 1 s)"])
    summary = team_load.summarise([first, second], rounds=1)
    assert (summary["sessions"], summary["interactions"], summary["expected_interactions"]) == (2, 5, 8)
    assert summary["filter_repicks"] == 1 and [one["filter_repicks"] for one in summary["per_session"]] == [1, 0]
    assert summary["errors"] == 1 and summary["error_messages"][0].startswith("b: review_filter: Timeout")
    assert summary["pages"]["review_open"] == {"n": 2, "median_s": 2.0, "p95_s": 2.9, "max_s": 3.0}
    assert summary["pages"]["explain_open"] == {"n": 1, "median_s": 4.0, "p95_s": 4.0, "max_s": 4.0}
    assert summary["overall"] == {"n": 5, "median_s": 3.0, "p95_s": 3.8, "max_s": 4.0}
    assert summary["sign_in"]["median_s"] == 6.0  # on its own, not in `overall`
    assert team_load.summarise([], rounds=1)["overall"] == {"n": 0, "median_s": None, "p95_s": None, "max_s": None}


@pytest.mark.slow
def test_two_signed_in_annotators_work_through_review_and_explain_without_errors():
    if not Path(app_bench.CHROMIUM).exists():
        pytest.skip(f"{app_bench.CHROMIUM} is missing (apt-get install chromium)")
    pytest.importorskip("oidc_provider_mock")
    report = team_load.run(sessions=2, rounds=1, timeout=60, artifacts=ARTIFACTS)
    assert report["benchmark"] == "team_load" and report["pages"] == list(team_load.PAGES)
    assert report["ledger"] in ("sqlite", "postgresql")
    assert report["errors"] == 0, (report["single"]["error_messages"], report["team"]["error_messages"])
    assert report["warm_up"]["errors"] == 0, report["warm_up"]["error_messages"]
    for run, sessions in ((report["single"], 1), (report["team"], 2)):
        assert RUN_KEYS <= set(run)
        assert (run["sessions"], run["rounds"]) == (sessions, 1)
        assert run["interactions"] == run["expected_interactions"] == sessions * len(team_load.PAGES)
        for name in team_load.PAGES:
            figures = run["pages"][name]
            assert set(figures) == FIGURE_KEYS and figures["n"] == sessions
            assert 0 < figures["median_s"] <= figures["p95_s"] <= figures["max_s"] < 60
        assert run["overall"]["n"] == run["interactions"]
        assert 0 < run["overall"]["median_s"] <= run["overall"]["p95_s"]
        assert run["sign_in"]["n"] == sessions and run["sign_in"]["median_s"] > 0
        assert len(run["load_average_start"]) == len(run["load_average_end"]) == 3
        assert all(value >= 0 for value in run["load_average_start"] + run["load_average_end"])
        assert run["server_rss_mb_end"] > 100  # the server holds TensorFlow and the model
        assert [(one["interactions"], one["rounds_done"], one["errors"]) for one in run["per_session"]] == [
            (len(team_load.PAGES), 1, 0)] * sessions
        assert all(one["websockets_after_sign_in"] == 0 for one in run["per_session"])  # no reconnect
        assert run["filter_repicks"] == sum(one["filter_repicks"] for one in run["per_session"])
    assert report["ratio_median"] == pytest.approx(
        report["team"]["overall"]["median_s"] / report["single"]["overall"]["median_s"], abs=0.01)
    assert report["ratio_p95"] == pytest.approx(
        report["team"]["overall"]["p95_s"] / report["single"]["overall"]["p95_s"], abs=0.01)


def test_bench_command_takes_the_team_flag(capsys):
    from commandline import cli
    from commandline.commands import bench

    args = cli.build_parser().parse_args(["bench", "--json", "--quick", "--no-app", "--team", "--team-sessions", "4",
                                              "--team-rounds", "2"])
    assert (args.team, args.team_sessions, args.team_rounds) == (True, 4, 2)
    assert bench._command(args) == "workbench bench --json --quick --team --team-sessions 4 --team-rounds 2"
    assert cli.main(["bench", "--team", "--team-sessions", "0"]) == 2  # refused before anything runs
    assert "--team-sessions and --team-rounds must be at least 1" in capsys.readouterr().err
