"""Files the CLI and pages write for an explanation (overlay PNGs, token HTML)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from explainers import render
from foundation.types import Explanation, Modality

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _stem(index: int, raw: str) -> str:
    stem = _SAFE_NAME.sub("_", Path(raw).stem if len(raw) < 200 else raw[:40])[:40].strip("_")
    return f"{index:04d}_{stem or 'input'}"


def write_explanation_file(out: Path, index: int, raw: str, item: Any, explanation: Explanation, model: Any) -> Path:
    """Image: a PNG overlay at the original image size. Text: a small escaped HTML page."""
    base = out / f"{_stem(index, raw)}_{explanation.method.replace('+', 'p')}"
    if explanation.modality is Modality.IMAGE:
        signed = bool((explanation.values < 0).any())
        image = render.overlay_heatmap(item, explanation.values, signed=signed)
        path = base.with_suffix(".png")
        path.write_bytes(render.png_bytes(image))
        return path
    path = base.with_suffix(".html")
    body = render.token_html(explanation.tokens or (), explanation.values)
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>explanation</title>"
        f"<body style='font-family:sans-serif'>{body}</body>",
        encoding="utf-8",
    )
    return path
