"""The one escaper for text shown through Markdown (Streamlit's st.markdown, st.error, model cards).

Class names, annotator names, file names and user text reach Markdown in many places. Each
one goes through `markdown_literal`, so a label such as `[click](javascript:x)`, `$x$` or
`<img onerror=…>` is shown as typed and never becomes a link, math, a directive or a tag.
"""
from __future__ import annotations

import string
from typing import Any

_HTML_SPECIAL = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#x27;"}


def markdown_literal(text: Any, *, one_line: bool = False) -> str:
    """`text` shown literally in Markdown: HTML characters as entities, every other ASCII
    punctuation mark backslash-escaped. `one_line` also folds whitespace runs (newlines
    included) into single spaces, for table cells and headings."""
    text = str(text)
    if one_line:
        text = " ".join(text.split())
    out = []
    for char in text:
        if char in _HTML_SPECIAL:
            out.append(_HTML_SPECIAL[char])
        elif char in string.punctuation:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
