"""`workbench bench`: our explainers against the plain library calls, on the sample models."""
from __future__ import annotations

import argparse
import json
import sys

from foundation.errors import WorkbenchError


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks import explainers_bench
    from models import store

    if args.repeats < 1:
        raise WorkbenchError("--repeats must be at least 1.")
    if args.team_sessions < 1 or args.team_rounds < 1:
        raise WorkbenchError("--team-sessions and --team-rounds must be at least 1.")
    if args.scale_n < 1:
        raise WorkbenchError("--scale-n must be at least 1.")
    if args.realistic_size < 32:
        raise WorkbenchError("--realistic-size must be at least 32 (the smallest input keras.applications builds).")
    for name, modality in ((args.image_model, "image"), (args.text_model, "text")):
        if name not in store.model_names():
            raise WorkbenchError(f"there is no model named {name!r}; run `make zoo` to train the sample models.")
        if store.manifest(name).modality.value != modality:
            article = "an" if modality == "image" else "a"
            raise WorkbenchError(f"{name!r} is not {article} {modality} model; pass one with --{modality}-model.")
    log = (lambda message: print(f"bench: {message}", file=sys.stderr, flush=True))
    try:
        report = explainers_bench.run(
            repeats=args.repeats, quick=args.quick, image_model=args.image_model,
            text_model=args.text_model, seed=args.seed, log=log,
            command=_command(args),
        )
    except ValueError as exc:  # e.g. a model the reference recipe cannot run on
        raise WorkbenchError(str(exc)) from None
    report["gradcam_throughput"] = _gradcam_throughput(args, log)
    if args.realistic:
        report["realistic"] = _realistic(args, log)
        report["results"].extend(report["realistic"].pop("results"))
    if args.team:
        report["team_load"] = _team_load(args, log)
    if args.scale:
        report["scale"] = _scale(args, log)
    if not args.quick and not args.no_app:
        report["app"] = _app_figures(log)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(explainers_bench.table(report))
        print(f"Grad-CAM throughput: {report['gradcam_throughput']}")
        if "app" in report:
            print(f"App: {report['app']}")
        if "team_load" in report:
            print(f"Team load: {_team_line(report['team_load'])}")
        if "scale" in report:
            print(f"Scale: {json.dumps(report['scale'])}")
    return 0


def _gradcam_throughput(args: argparse.Namespace, log) -> dict:
    from workbench import api, batch

    log("Grad-CAM throughput over many inputs (batches of 64, overlays rendered)…")
    result = batch.throughput(api.load_model(args.image_model), "gradcam", n=128 if args.quick else 1024)
    log(f"Grad-CAM throughput: {result}")
    return result


def _realistic(args: argparse.Namespace, log) -> dict:
    """Rows on a Keras applications architecture at 224 x 224 with random weights (benchmarks/realistic.py)."""
    from benchmarks import realistic

    return realistic.run(size=args.realistic_size, architecture=args.realistic_model,
                         repeats=1 if args.quick else args.repeats, log=log)


def _team_load(args: argparse.Namespace, log) -> dict:
    """Issue 15's load check: a single signed-in session, then --team-sessions at once, through the
    Review and Explain image pages (benchmarks/team_load.py)."""
    from benchmarks import team_load

    log(f"team load: a local sign-in provider, the app, 1 then {args.team_sessions} signed-in sessions in Chromium…")
    try:
        return team_load.run(sessions=args.team_sessions, rounds=args.team_rounds, log=lambda message: log(f"team load: {message}"))
    except Exception as exc:  # no browser or no provider here: the explainer figures still stand
        return {"error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def _team_line(figures: dict) -> str:
    if "error" in figures:
        return figures["error"]
    single, team = figures["single"]["overall"], figures["team"]["overall"]
    return (f"1 session median {single['median_s']} s, p95 {single['p95_s']} s; {figures['team']['sessions']} sessions "
            f"median {team['median_s']} s, p95 {team['p95_s']} s (x{figures['ratio_median']}, x{figures['ratio_p95']}); "
            f"errors {figures['errors']}")


def _app_figures(log) -> dict:
    """The real app in Chromium, from the server's start: first paint, first Grad-CAM on the default page,
    its trust panel, the server's memory (see benchmarks/app_bench.py)."""
    from benchmarks.app_bench import run_app_bench

    log("app: first paint, first Grad-CAM and trust panel, server memory (streamlit + headless Chromium)…")
    try:
        figures = run_app_bench()
    except Exception as exc:  # no browser here: the explainer figures still stand
        figures = {"error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    log(f"app: {figures}")
    return figures


def _scale(args: argparse.Namespace, log) -> dict:
    """Issue 16: explain-batch Grad-CAM, local vs Ray on 1 and 2 workers, on --scale-n generated images
    (benchmarks/scale_bench.py), and the Dataset page's core at 20,000 and 100,000 examples."""
    from benchmarks import scale_bench, scale_dataset

    n = min(args.scale_n, 500) if args.quick else args.scale_n
    figures = {"explain_batch": scale_bench.run(n, args.image_model, log=lambda message: log(f"scale: {message}"))}
    sizes = (2_000,) if args.quick else (20_000, 100_000)
    figures["dataset_page"] = [scale_dataset.dataset_latency(size, progress=lambda message, fraction: log(
        f"scale: dataset {size}: {message}")) for size in sizes]
    return figures


def _command(args: argparse.Namespace) -> str:
    parts = ["workbench", "bench"]
    if args.json:
        parts.append("--json")
    if args.quick:
        parts.append("--quick")
    if args.repeats != 3:
        parts += ["--repeats", str(args.repeats)]
    if args.image_model != "shapes":
        parts += ["--image-model", args.image_model]
    if args.text_model != "headlines":
        parts += ["--text-model", args.text_model]
    if args.realistic:
        parts.append("--realistic")
        if args.realistic_model != "mobilenetv2":
            parts += ["--realistic-model", args.realistic_model]
        if args.realistic_size != 224:
            parts += ["--realistic-size", str(args.realistic_size)]
    if args.team:
        parts.append("--team")
        if args.team_sessions != 10:
            parts += ["--team-sessions", str(args.team_sessions)]
        if args.team_rounds != 3:
            parts += ["--team-rounds", str(args.team_rounds)]
    if args.scale:
        parts.append("--scale")
        if args.scale_n != 20_000:
            parts += ["--scale-n", str(args.scale_n)]
    return " ".join(parts)


def register(sub) -> None:
    bench = sub.add_parser("bench", help="time our explainers against the reference library calls")
    bench.add_argument("--json", action="store_true", help="print one JSON object with a `results` array")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs per side; medians are reported (default 3)")
    bench.add_argument("--quick", action="store_true", help="tiny budgets, to check that everything runs")
    bench.add_argument("--no-app", action="store_true", help="skip the app figures (first paint, Grad-CAM, trust panel, memory)")
    bench.add_argument("--image-model", default="shapes", help="image model to time on (default shapes)")
    bench.add_argument("--text-model", default="headlines", help="text model to time on (default headlines)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--realistic", action="store_true",
                       help="add rows on a real-size architecture with random weights (forward_224, gradcam_batch_224, "
                            "first_map_224_s, shap_image_224, lime_image_224 with lime's default call timed once: "
                            "minutes at 224)")
    bench.add_argument("--realistic-model", default="mobilenetv2", choices=["mobilenetv2", "resnet50"],
                       help="the keras.applications architecture for --realistic (default mobilenetv2)")
    bench.add_argument("--realistic-size", type=int, default=224, help="its input size (default 224; at least 32)")
    bench.add_argument("--team", action="store_true",
                       help="add issue 15's load check (team_load): a local sign-in provider and the app, one signed-in "
                            "session then --team-sessions at once through Review (open, filter, Keep) and Explain image "
                            "in headless Chromium; median and p95 page latency, errors, load average (minutes)")
    bench.add_argument("--team-sessions", type=int, default=10, help="concurrent sessions for --team (default 10)")
    bench.add_argument("--team-rounds", type=int, default=3,
                       help="passes through the pages per session for --team (default 3)")
    bench.add_argument("--scale", action="store_true",
                       help="add issue 16's scale figures: explain-batch Grad-CAM throughput with the local engine and "
                            "with Ray on 1 and 2 workers (per-input cost, start-up, a 10-million projection), and the "
                            "Dataset page's latency at 20,000 and 100,000 examples (minutes)")
    bench.add_argument("--scale-n", type=int, default=20_000, help="generated images for --scale (default 20000)")
    bench.set_defaults(func=cmd_bench)
