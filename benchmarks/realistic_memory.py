"""Resident memory of a fresh process that explains with a real-size model, as the app does.

`python -m benchmarks.realistic_memory --model NAME` (WORKBENCH_HOME pointing at the workspace
that holds the model and its converted scoring copy): loads the model, settles its scoring
runtime (WORKBENCH_RUNTIME decides: auto = the cached LiteRT copy, keras = Keras), then runs
the Explain page's SHAP and LIME calls and one Grad-CAM on a photo-like image, and prints one
JSON line with the process's resident peak (VmHWM, MB) after each step. The benchmark
process itself is no guide: it has built, trained and converted models (several GB). Not
ru_maxrss: Linux carries it over from the forked parent through exec, so a child of the
6 GB benchmark process would report 6 GB before doing anything.
"""
from __future__ import annotations

import argparse
import json
import time


def peak_mb() -> float:
    from benchmarks.realistic import peak_rss_mb

    return round(peak_rss_mb(), 1)


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.realistic import PAGE_PARAMS, photo_like_image
    from workbench import api
    from workbench.warmup import warm_up_shap

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    steps: dict[str, float] = {"started": peak_mb()}
    model = api.load_model(args.model)
    runtime = model.scoring_runtime()
    warm_up_shap()
    steps["model_loaded"] = peak_mb()
    height, _ = model.image_size
    image = api.prepare_images(model, [photo_like_image(height, seed=21)])[0]
    target = int(model.predict_proba([image])[0].argmax())
    seconds = {}
    for method in ("shap", "lime"):
        started = time.perf_counter()
        api.explain_input(model, method, image, target, params=dict(PAGE_PARAMS[method]))
        seconds[method] = round(time.perf_counter() - started, 2)
        steps[f"after_{method}"] = peak_mb()
    api.explain_input(model, "gradcam", image, target)
    steps["after_gradcam"] = peak_mb()
    return {"runtime": runtime.runtime, "peak_rss_mb": steps["after_gradcam"], "steps_mb": steps, "seconds": seconds}


if __name__ == "__main__":
    print(json.dumps(main()))
