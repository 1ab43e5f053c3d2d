"""How long the first SHAP explanation takes in a freshly started process.

Run as `python -m benchmarks.first_shap --model shapes [--warm-up]`; prints one JSON object.
The process does what the app does on its first page view: (with --warm-up) start the
background shap warm-up exactly as app.py does, load the model, predict and show Grad-CAM.
Then, after `--think-seconds` (default 3: the first user looks at the page and clicks the
SHAP tab; a person cannot do that before the page is shown), it asks for the first SHAP
explanation and times it. Whatever remains of the warm-up at that moment is charged to the
request; the report says whether the warm-up had finished.
"""
from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Sequence  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--max-evals", type=int, default=500)
    parser.add_argument("--warm-up", action="store_true", help="start the app's background warm-up first")
    parser.add_argument("--think-seconds", type=float, default=3.0,
                        help="pause between the first page view and the SHAP request (default 3)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from workbench import warmup

    if args.warm_up:
        warmup.start()

    from workbench import api, datasets

    model = api.load_model(args.model)
    dataset_name = model.info.dataset or args.model
    image = datasets.load(dataset_name, "test").x[0]
    api.predict(model, [image])
    api.explain(model, "gradcam", [image])
    page_ready = time.perf_counter() - _STARTED
    time.sleep(max(0.0, args.think_seconds))

    warm_up_finished = warmup.status().done
    requested_at = time.perf_counter() - _STARTED
    begun = time.perf_counter()
    api.explain(model, "shap", [image], max_evals=args.max_evals)
    first_shap = time.perf_counter() - begun
    status = warmup.status()
    print(json.dumps({
        "model": model.name,
        "warm_up": args.warm_up,
        "first_shap_s": first_shap,
        "page_ready_s": page_ready,
        "think_s": args.think_seconds,
        "requested_at_s": requested_at,
        "warm_up_finished_before_request": warm_up_finished,
        "warm_up_s": status.seconds,
        "warm_up_error": status.error,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
