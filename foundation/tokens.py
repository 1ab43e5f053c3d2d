"""Tokenisation shared by text models, explainers and sample data."""
from __future__ import annotations

import re

# Mirrors keras.layers.TextVectorization's "lower_and_strip_punctuation" + whitespace split,
# so the tokens we show are exactly the ones the text model reads.
PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]\^_`{|}~\']')


def tokenize(text: str) -> list[str]:
    return PUNCTUATION.sub("", text.lower()).split()
