"""A Markdown model card for one version, built from its manifest (plus optional trust figures).

Class names, annotator names and other recorded text are escaped for Markdown, so a label
such as `[click](http://x)` shows as typed instead of becoming a link.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from foundation.escaping import markdown_literal


def md(text: Any) -> str:
    """Text safe to place in Markdown (and in a table cell): escaped, on one line."""
    return markdown_literal(text, one_line=True)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _per_class_table(metrics: Mapping[str, Any]) -> list[str]:
    per_class = metrics.get("per_class") or {}
    if not per_class:
        return []
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in per_class.items():
        lines.append(f"| {md(name)} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return lines


def weaknesses(manifest: Mapping[str, Any], *, top: int = 3) -> list[str]:
    """Plain findings from the recorded metrics: weakest classes, most frequent confusions, shortcut gaps."""
    found: list[str] = []
    test = manifest.get("metrics", {}).get("test", {})
    per_class = test.get("per_class") or {}
    weakest = sorted(per_class.items(), key=lambda item: item[1]["recall"])[:top]
    for name, row in weakest:
        if row["recall"] < 1.0:
            found.append(f"Class {md(name)}: recall {row['recall']:.1%} on the clean test split.")
    confusion = test.get("confusion")
    classes = list(manifest.get("classes", []))
    if confusion is not None and len(classes) == len(confusion):
        off = np.asarray(confusion, dtype=int)
        np.fill_diagonal(off, 0)
        for flat in np.argsort(-off, axis=None)[:top]:
            truth, predicted = np.unravel_index(flat, off.shape)
            if off[truth, predicted] > 0:
                found.append(f"{off[truth, predicted]} test examples of {md(classes[truth])} "
                             f"were predicted as {md(classes[predicted])}.")
    nocue = manifest.get("metrics", {}).get("test_nocue")
    if nocue and test and nocue["accuracy"] < test["accuracy"] - 0.05:
        found.append(f"Accuracy falls from {_pct(test['accuracy'])} to {_pct(nocue['accuracy'])} when the "
                     "planted cue is removed: the model relies on a shortcut.")
    return found or ["No weakness stands out in the recorded metrics; they come from small test splits."]


def _show(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (float, Mapping)):
        return md(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return ", ".join(f"{md(key)} {_show(item)}" for key, item in value.items())


def _figures(title: str, figures: Mapping[str, Any] | None, missing: str) -> list[str]:
    lines = [f"## {title}", ""]
    if not figures:
        return lines + [missing, ""]
    return lines + [f"- **{md(key)}**: {_show(value)}" for key, value in figures.items()] + [""]


def _data_line(manifest: Mapping[str, Any]) -> str:
    if manifest.get("data_snapshot_hash"):
        return f"- **Data snapshot with the corrections (sha256)**: `{manifest['data_snapshot_hash']}`"
    return f"- **Training data (sha256)**: `{manifest.get('data_hash') or 'unknown'}`"


def model_card(
    manifest: Mapping[str, Any],
    *,
    status: str | None = None,
    trust: Mapping[str, Any] | None = None,
    sanity: Mapping[str, Any] | None = None,
) -> str:
    """The card as Markdown. `trust` / `sanity`: explanation-metric results, when measured."""
    name, version = manifest.get("name", "model"), manifest.get("version", "?")
    metrics = manifest.get("metrics", {})
    test, val = metrics.get("test", {}), metrics.get("val", {})
    lines = [
        f"# Model card: {md(name)} {md(version)}",
        "",
        f"- **Status**: {md(status or 'unknown')}",
        f"- **Parent version**: {md(manifest.get('parent') or 'none (trained from the shipped recipe)')}",
        f"- **Created**: {md(manifest.get('created_at', 'unknown'))} by {md(manifest.get('created_by', 'unknown'))}",
        f"- **Modality**: {md(manifest.get('modality', '?'))}; classes: {', '.join(md(c) for c in manifest.get('classes', []))}",
        f"- **sha256 of model.keras**: `{manifest.get('sha256', 'unknown')}`",
        "",
        "## Intended use",
        "",
        md(manifest.get("intended_use", "Not recorded.")),
        "",
        "## Data and corrections",
        "",
        f"- **Dataset**: {md(manifest.get('dataset', 'unknown'))}, split {md(manifest.get('train_split', 'train'))}",
        _data_line(manifest),
        f"- **Labels changed by corrections**: {int(manifest.get('labels_changed', 0))}",
        "",
        "## Metrics",
        "",
        f"- **Test accuracy** (clean test split, n = {test.get('n', '?')}): {_pct(test.get('accuracy'))}",
        f"- **Validation accuracy**: {_pct(val.get('accuracy'))}",
    ]
    for split, values in metrics.items():
        if split not in ("test", "val") and isinstance(values, Mapping) and "accuracy" in values:
            lines.append(f"- **{md(split)} accuracy**: {_pct(values['accuracy'])}")
    parent_test = manifest.get("parent_metrics", {}).get("test", {})
    if parent_test:
        lines.append(f"- **Parent's test accuracy** (same split): {_pct(parent_test.get('accuracy'))}")
    lines += ["", *_per_class_table(test), "", "## Known weaknesses", ""]
    lines += [f"- {item}" for item in weaknesses(manifest)] + [""]
    lines += _figures("Sanity check", sanity or manifest.get("sanity_check"),
                      "Not run yet for this version (the explanation sanity check randomises the model's "
                      "weights and tests whether the explanations change).")
    lines += _figures("Trust figures of the explanations", trust or manifest.get("trust"),
                      "Not measured yet for this version.")
    return "\n".join(lines).rstrip() + "\n"
