"""A Markdown model card for one version, built from its manifest (plus optional trust figures).

Class names, annotator names and other recorded text are escaped for Markdown, so a label
such as `[click](http://x)` shows as typed instead of becoming a link.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from foundation.errors import ModelError
from foundation.escaping import markdown_literal
from models import model_io
from models.manifest import Manifest, SplitMetrics


def md(text: Any) -> str:
    """Text safe to place in Markdown (and in a table cell): escaped, on one line."""
    return markdown_literal(text, one_line=True)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _per_class_table(metrics: SplitMetrics) -> list[str]:
    if not metrics.per_class:
        return []
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in metrics.per_class.items():
        lines.append(f"| {md(name)} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} | {row.support} |")
    return lines


def weaknesses(manifest: Manifest, *, top: int = 3) -> list[str]:
    """Plain findings from the recorded metrics: weakest classes, most frequent confusions, shortcut gaps."""
    found: list[str] = []
    test = manifest.metrics.test
    rows = [(name, row) for name, row in test.per_class.items() if row.recall is not None]
    weakest = sorted(rows, key=lambda item: item[1].recall)[:top]
    for name, row in weakest:
        if row.recall < 1.0:
            found.append(f"Class {md(name)}: recall {row.recall:.1%} on the clean test split.")
    confusion = test.confusion
    classes = list(manifest.classes)
    if confusion is not None and len(classes) == len(confusion):
        off = np.asarray(confusion, dtype=int)
        np.fill_diagonal(off, 0)
        for flat in np.argsort(-off, axis=None)[:top]:
            truth, predicted = np.unravel_index(flat, off.shape)
            if off[truth, predicted] > 0:
                found.append(f"{off[truth, predicted]} test examples of {md(classes[truth])} "
                             f"were predicted as {md(classes[predicted])}.")
    nocue = manifest.metrics.get("test_nocue")
    if nocue.recorded and test.recorded and nocue.accuracy < test.accuracy - 0.05:
        found.append(f"Accuracy falls from {_pct(test.accuracy)} to {_pct(nocue.accuracy)} when the "
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


def _data_line(manifest: Manifest) -> str:
    if manifest.lineage.data_snapshot_hash:
        return f"- **Data snapshot with the corrections (sha256)**: `{manifest.lineage.data_snapshot_hash}`"
    return f"- **Training data (sha256)**: `{manifest.lineage.data_hash or 'unknown'}`"


def _or(value: Any, missing: str) -> Any:
    """A recorded value, or what to show when the manifest does not record it."""
    return missing if value is None else value


def _origin(manifest: Manifest) -> str:
    source = manifest.lineage.source
    if source is not None and source.path:
        label = source.path if source.path.startswith("upload:") else Path(source.path).name
        return f"none (registered from {label})"
    return "none (trained from the shipped recipe)"


def _how(manifest: Manifest, key: str) -> str:
    """" (how it was known)" from the manifest's `inferred` entry; an assumption is flagged in bold."""
    source = (manifest.inferred or {}).get(key)
    if not source:
        return ""
    if key == "output" and source.startswith("the output layer"):
        return " (detected from the output layer)"
    if source.startswith("assumed"):
        return f" — **assumed** {md(source.removeprefix('assumed'))}"
    if source == "given":
        return " (given when it was registered)"
    if source.startswith(("not ", "none", "unknown")):
        return f" ({md(source)})"
    return f" (known from {md(source)})"


def _output_line(manifest: Manifest) -> str:
    kind = manifest.output_kind
    text = model_io.OUTPUT_KINDS.get(kind, kind).replace("K-way", f"{len(manifest.classes)}-way").replace(": ", " — ", 1)
    return f"- **Output**: {md(text)}{_how(manifest, 'output')}"


def _preprocessing_text(manifest: Manifest, channels: int) -> str:
    spec = manifest.input
    try:
        return model_io.Preprocessing(spec.preprocessing_preset, spec.mean, spec.std, channels).describe()
    except ModelError:  # a manifest edited by hand: show what it says
        return str(spec.preprocessing_preset)


def _input_lines(manifest: Manifest) -> list[str]:
    spec = manifest.input
    if manifest.modality.value == "image":
        channels = spec.channels or 3
        size = f"{spec.width} x {spec.height} pixels" if spec.width and spec.height else "size not recorded"
        colour = "grey (1 channel: colour images are fed as their luminance)" if channels == 1 else "RGB (3 channels)"
        return [f"- **Input**: image, {md(size)}, {md(colour)}{_how(manifest, 'input_size')}",
                f"- **Preprocessing**: {md(_preprocessing_text(manifest, channels))}{_how(manifest, 'preprocessing')}"]
    length = f"at most {spec.sequence_length} tokens" if spec.sequence_length else "not truncated"
    if spec.encoding == "token_ids":
        vocabulary = spec.vocabulary or ()
        size = len(vocabulary)
        if spec.oov_id is None:
            oov = "none: unknown words are skipped"
        else:
            oov = f"{spec.oov_id} ({vocabulary[spec.oov_id] if spec.oov_id < size else '?'})"
        return [f"- **Input**: text as token ids, {md(length)}, padding {md(spec.padding or 'post')}"
                f"{_how(manifest, 'sequence_length') if spec.sequence_length else ''}",
                f"- **Vocabulary**: {size} tokens outside the model{_how(manifest, 'vocabulary')}; "
                f"out-of-vocabulary id {md(oov)}{_how(manifest, 'oov_id')}"]
    words = f"; vocabulary of {manifest.vocabulary_size} tokens" if manifest.vocabulary_size else ""
    return [f"- **Input**: text (the model reads strings), {md(length)}{md(words)}"]


def _setting(value: Any, missing: str = "not recorded") -> str:
    """One recorded training setting as the card shows it (a hand-edited manifest may hold anything)."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    return md(value)


def reason_lines(manifest: Manifest) -> list[str]:
    """The "Retrained with reason marks" section (issue 17) from the settings `workbench.retrain` records
    in the training config's "reason" entry; nothing for a version trained without marks."""
    config = manifest.training.config if manifest.training else None
    reason = (config or {}).get("reason")
    if not isinstance(reason, Mapping):
        return []
    event = reason.get("reason_event_id")
    upto = f" (the ledger's reason marks up to event #{_setting(event)})" if event is not None else ""
    counterfactual = reason.get("counterfactual")
    copies = _setting(counterfactual)
    if counterfactual is True:
        extra = reason.get("counterfactual_repeats")
        copies += (" — each marked example is also trained on with the marked part removed"
                   + (f" (each copy seen {_setting(extra)} extra time(s) per epoch)" if extra is not None else ""))
    clipnorm = reason.get("clipnorm", "not recorded")
    return [
        "## Retrained with reason marks",
        "",
        f"- **Method**: {_setting(reason.get('method'))}: the model's input gradients are penalised inside "
        "the regions people marked “not a reason”",
        f"- **Examples marked “not a reason”**: {_setting(reason.get('marked_examples'))}{upto}",
        f"- **Penalty λ**: {_setting(reason.get('penalty'))}",
        f"- **Counterfactual copies**: {copies}",
        f"- **Consistency weight γ**: {_setting(reason.get('consistency'))} (the prediction with the marked part "
        "removed must match the prediction with it)",
        f"- **Transplants**: {_setting(reason.get('transplants'))} per marked example (its marked content pasted "
        "into an example of another label, which keeps its own label)",
        f"- **Mark repeats**: each marked example seen {_setting(reason.get('mark_repeats'))} time(s) per epoch",
        f"- **Epochs**: {_setting(reason.get('epochs'))}; **learning rate**: {_setting(reason.get('learning_rate'))}; "
        f"**batch size**: {_setting(reason.get('batch_size'))}; **seed**: {_setting(reason.get('seed'))}",
        f"- **Gradient clip norm**: {_setting(clipnorm, 'off (no clipping)')}",
        "",
    ]


def model_card(
    manifest: Manifest,
    *,
    status: str | None = None,
    trust: Mapping[str, Any] | None = None,
    sanity: Mapping[str, Any] | None = None,
) -> str:
    """The card as Markdown. `trust` / `sanity`: explanation-metric results, when measured."""
    lineage, metrics = manifest.lineage, manifest.metrics
    test, val = metrics.test, metrics.val
    lines = [
        f"# Model card: {md(_or(manifest.name, 'model'))} {md(_or(manifest.version, '?'))}",
        "",
        f"- **Status**: {md(status or 'unknown')}",
        f"- **Parent version**: {md(lineage.parent or _origin(manifest))}",
        f"- **Created**: {md(_or(manifest.created_at, 'unknown'))} by {md(_or(manifest.created_by, 'unknown'))}",
        f"- **Modality**: {md(manifest.modality.value)}; classes: {', '.join(md(c) for c in manifest.classes)}",
        _output_line(manifest),
        *_input_lines(manifest),
        *[f"- **Note**: {md(note)}" for note in manifest.notes or ()],
        f"- **sha256 of model.keras**: `{_or(lineage.sha256, 'unknown')}`",
        "",
        "## Intended use",
        "",
        md(_or(manifest.intended_use, "Not recorded.")),
        "",
        "## Data and corrections",
        "",
        f"- **Dataset**: {md(manifest.dataset or 'none')}, split {md(_or(lineage.train_split, 'train'))}",
        _data_line(manifest),
        f"- **Labels changed by corrections**: {int(lineage.labels_changed or 0)}",
        "",
        *reason_lines(manifest),
        "## Metrics",
        "",
        f"- **Test accuracy** (clean test split, n = {_or(test.n, '?')}): {_pct(test.accuracy)}",
        f"- **Validation accuracy**: {_pct(val.accuracy)}",
    ]
    for split, values in metrics.items():
        if split not in ("test", "val") and values.accuracy is not None:
            lines.append(f"- **{md(split)} accuracy**: {_pct(values.accuracy)}")
    parent_test = manifest.parent_metrics.test if manifest.parent_metrics else None
    if parent_test is not None and parent_test.recorded:
        lines.append(f"- **Parent's test accuracy** (same split): {_pct(parent_test.accuracy)}")
    lines += ["", *_per_class_table(test), "", "## Known weaknesses", ""]
    lines += [f"- {item}" for item in weaknesses(manifest)] + [""]
    # Figures recorded inside a manifest (no writer does so today) are shown when there.
    lines += _figures("Sanity check", sanity or manifest.extra.get("sanity_check"),
                      "Not run yet for this version (the explanation sanity check randomises the model's "
                      "weights and tests whether the explanations change).")
    lines += _figures("Trust figures of the explanations", trust or manifest.extra.get("trust"),
                      "Not measured yet for this version.")
    return "\n".join(lines).rstrip() + "\n"
