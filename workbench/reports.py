"""Self-contained HTML reports: one file that opens offline in any browser and prints well.

A report is a title and a list of `Section`s. Each section may hold paragraphs, key/value
facts (method parameters, seeds, model version and sha256, trust figures), figures (PNG
images embedded as base64 data URIs), a table, text attributions (coloured tokens) and
annotator notes. `build_html` escapes every string it is given (user text, dataset text,
class names, notes) and writes no script, no external link or resource, no event handler; a
Content-Security-Policy meta tag forbids scripts and remote loads in any case.

Helpers build the usual sections from workbench objects: `model_section`,
`explanation_section`, `trust_section`, `notes_section`, `table_section`.
"""
from __future__ import annotations

import base64
import html
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainers import registry, render
from explainers.rounds import rounds_summary
from foundation.types import Explanation, Modality

MAX_TABLE_ROWS = 500


@dataclass(frozen=True)
class Figure:
    """An image (uint8 RGB array, or PNG bytes) and its caption."""

    image: Any
    caption: str = ""


@dataclass(frozen=True)
class Tokens:
    """A text attribution: one value per token (rendered with the escaped token highlighter)."""

    tokens: tuple[str, ...]
    values: tuple[float, ...]
    caption: str = ""


@dataclass(frozen=True)
class Note:
    annotator: str
    text: str
    when: str = ""
    example: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    figures: tuple[Figure, ...] = ()
    tokens: tuple[Tokens, ...] = ()
    table: Any = None  # a pandas DataFrame or a list of row dicts
    notes: tuple[Note, ...] = ()


_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1a1a1a; background: #fff; max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; }
header { border-bottom: 3px solid #3b6ea5; margin-bottom: 1.5rem; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 1.8rem 0 .6rem; color: #23466e; border-bottom: 1px solid #d5dde8; padding-bottom: .2rem; }
.meta { color: #555; font-size: .9rem; margin: 0 0 .8rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .88rem; }
th, td { border: 1px solid #cfd6df; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
table.facts th { width: 14rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; }
figure img { display: block; max-width: 18rem; height: auto; image-rendering: pixelated; border: 1px solid #cfd6df; }
figcaption { font-size: .82rem; color: #444; max-width: 18rem; margin-top: .25rem; }
blockquote { margin: .4rem 0; padding: .3rem .8rem; border-left: 4px solid #9db4d0; background: #f6f8fb; }
.note-meta { font-size: .8rem; color: #555; }
.sha { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
footer { margin-top: 2.5rem; font-size: .8rem; color: #666; border-top: 1px solid #d5dde8; padding-top: .5rem; }
@page { size: A4; margin: 15mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10.5pt; }
  section { break-inside: avoid-page; page-break-inside: avoid; }
  section.long { break-inside: auto; page-break-inside: auto; }
  h2 { break-after: avoid-page; page-break-after: avoid; }
  figure, tr, blockquote { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

# Defence in depth: even if something slipped through escaping, nothing could run or load.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "–"
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_format(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(v) for v in value)
    if value is None:
        return "–"
    return str(value)


def png_data_uri(image: Any) -> str:
    """A data: URI of PNG bytes, or of a uint8 image array encoded as PNG."""
    data = image if isinstance(image, (bytes, bytearray)) else render.png_bytes(np.asarray(image))
    if not bytes(data).startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("report figures must be PNG bytes or uint8 image arrays")
    return "data:image/png;base64," + base64.b64encode(bytes(data)).decode("ascii")


def _facts_html(facts: Mapping[str, Any]) -> str:
    rows = []
    for key, value in facts.items():
        css = ' class="sha"' if "sha256" in str(key).lower() else ""
        rows.append(f"<tr><th>{_e(key)}</th><td{css}>{_e(_format(value))}</td></tr>")
    return '<table class="facts">' + "".join(rows) + "</table>"


def _table_rows(table: Any) -> tuple[list[str], list[list[Any]]]:
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        columns = [str(c) for c in table.columns]
        return columns, table.astype(object).values.tolist()
    rows = list(table)
    columns: list[str] = []
    for row in rows:
        columns.extend(str(k) for k in row if str(k) not in columns)
    return columns, [[row.get(c) for c in columns] for row in rows]


def _table_html(table: Any) -> str:
    columns, rows = _table_rows(table)
    shown = rows[:MAX_TABLE_ROWS]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in shown:
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            css = ' class="num"' if numeric else ""
            cells.append(f"<td{css}>{_e(_format(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<p class="meta">Showing the first {len(shown):,} of {len(rows):,} rows.</p>'
            if len(rows) > len(shown) else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _figures_html(figures: Sequence[Figure]) -> str:
    items = []
    for figure in figures:
        alt = figure.caption or "figure"
        caption = f"<figcaption>{_e(figure.caption)}</figcaption>" if figure.caption else ""
        items.append(f'<figure><img src="{png_data_uri(figure.image)}" alt="{_e(alt)}">{caption}</figure>')
    return '<div class="figures">' + "".join(items) + "</div>"


def _tokens_html(item: Tokens) -> str:
    # token_html escapes every token and attribute; it writes spans with inline styles only.
    body = render.token_html(list(item.tokens), list(item.values))
    caption = f'<p class="meta">{_e(item.caption)}</p>' if item.caption else ""
    return f"<div>{body}{render.diverging_legend_html('against', 'for')}{caption}</div>"


def _notes_html(notes: Sequence[Note]) -> str:
    parts = []
    for note in notes:
        meta = " · ".join(_e(p) for p in (note.annotator or "anonymous", note.example, note.when) if p)
        parts.append(f'<blockquote><div class="note-meta">{meta}</div><div>{_e(note.text)}</div></blockquote>')
    return "".join(parts)


def _section_html(section: Section) -> str:
    parts = [f"<h2>{_e(section.title)}</h2>"]
    parts.extend(f"<p>{_e(p)}</p>" for p in section.paragraphs)
    if section.facts:
        parts.append(_facts_html(section.facts))
    if section.figures:
        parts.append(_figures_html(section.figures))
    parts.extend(_tokens_html(t) for t in section.tokens)
    if section.table is not None:
        parts.append(_table_html(section.table))
    if section.notes:
        parts.append(_notes_html(section.notes))
    long = section.table is not None and len(_table_rows(section.table)[1]) > 25
    return ('<section class="long">' if long else "<section>") + "".join(parts) + "</section>"


def build_html(title: str, sections: Sequence[Section], *, subtitle: str = "", generated_at: str | None = None) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    when = generated_at or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sub = f'<p class="meta">{_e(subtitle)}</p>' if subtitle else ""
    body = "".join(_section_html(s) for s in sections)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1>{sub}<p class="meta">Generated {_e(when)} by the Explainability Workbench.</p></header>'
        f"<main>{body}</main>"
        "<footer>Self-contained report: every image is embedded; nothing is loaded from the network.</footer>"
        "</body></html>\n"
    )


def build_report(title: str, sections: Sequence[Section], **kwargs: Any) -> bytes:
    """`build_html` encoded as UTF-8 bytes (what a download button or a file wants)."""
    return build_html(title, sections, **kwargs).encode("utf-8")


def report_filename(title: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "report"
    # The date only: a name that changed every second would make a download button a new widget each run.
    return f"{stem}-{time.strftime('%Y%m%d', time.gmtime())}.html"


# --- helpers building the usual sections -----------------------------------------------------------


def model_section(model: Any, title: str | None = None) -> Section:
    """Name, version, sha256, modality, classes and training dataset of a LoadedModel."""
    info = model.info
    sha256 = info.lineage.sha256
    facts = {
        "model": model.name, "version": model.version, "sha256": "–" if sha256 is None else sha256,
        "modality": model.modality.value, "classes": ", ".join(model.classes),
        "trained on": info.dataset or "–",
    }
    accuracy = info.metrics.test.accuracy
    if accuracy is not None:
        facts["test accuracy (manifest)"] = f"{accuracy:.1%}"
    return Section(title or f"Model {model.name} {model.version}", facts=facts)


def explanation_facts(explanation: Explanation) -> dict[str, Any]:
    facts = {
        "method": explanation.method, "explained class": explanation.target_label,
        "model version": f"{explanation.model_name} {explanation.model_version}",
        "seed": explanation.seed if explanation.seed is not None else "–",
        "seconds": round(float(explanation.seconds), 4),
    }
    for key, value in sorted(dict(explanation.params).items()):
        facts[f"parameter {key}"] = value
    if explanation.base_value is not None:
        facts["base value"] = explanation.base_value
    summary = rounds_summary(explanation.extras or {})
    if summary:  # how far SHAP's or LIME's rounds got, and whether the map had settled
        facts["evaluations"] = summary
    return facts


def explanation_section(explanation: Explanation, item: Any = None, *, title: str | None = None,
                        text: str = "", alpha: float = 0.45) -> Section:
    """One explanation: the overlay (image, if `item` is given) or coloured tokens, and its parameters."""
    figures: tuple[Figure, ...] = ()
    tokens: tuple[Tokens, ...] = ()
    if explanation.modality is Modality.IMAGE and item is not None:
        image = np.asarray(item)
        display = render.upscale_for_display(image, 192)
        signed = bool((explanation.values < 0).any())
        overlay = render.overlay_heatmap(display, explanation.values, alpha=alpha, signed=signed)
        figures = (Figure(display, "input"), Figure(overlay, f"{explanation.method} for “{explanation.target_label}”"))
    elif explanation.modality is Modality.TEXT:
        tokens = (Tokens(tuple(explanation.tokens or ()), tuple(float(v) for v in explanation.values),
                         f"{explanation.method}: orange = evidence for “{explanation.target_label}”, blue = against"),)
    facts = explanation_facts(explanation)
    labelled = registry.labelled_params(explanation.method, explanation.params)
    if labelled:  # the recorded parameters as their declarations name them, for a reader
        facts["settings"] = " · ".join(f"{label}: {value}" for label, value in labelled.items())
    return Section(title or f"{explanation.method} · {explanation.target_label}",
                   paragraphs=(text,) if text else (), facts=facts, figures=figures, tokens=tokens)


def trust_section(trust: Mapping[str, Any], title: str = "Trust figures", text: str = "") -> Section:
    """Trust metrics as facts; nested dicts (e.g. one per method) become a table."""
    nested = {k: v for k, v in trust.items() if isinstance(v, Mapping)}
    flat = {k: v for k, v in trust.items() if not isinstance(v, Mapping)}
    table = [{"": name, **{str(k): v for k, v in values.items()}} for name, values in nested.items()] or None
    return Section(title, paragraphs=(text,) if text else (), facts=flat, table=table)


def notes_section(notes: Sequence[Note | Mapping[str, Any]], title: str = "Annotator notes") -> Section:
    converted = []
    for note in notes:
        if isinstance(note, Note):
            converted.append(note)
        else:
            converted.append(Note(annotator=str(note.get("annotator") or ""), text=str(note.get("note") or note.get("text") or ""),
                                  when=str(note.get("when") or note.get("created_at") or ""),
                                  example=str(note.get("example_id") or note.get("example") or "")))
    return Section(title, notes=tuple(converted), paragraphs=() if converted else ("No notes.",))


def table_section(title: str, table: Any, text: str = "") -> Section:
    return Section(title, paragraphs=(text,) if text else (), table=table)
