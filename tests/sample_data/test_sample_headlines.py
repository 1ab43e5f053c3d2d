"""The headlines dataset: size, variety, negation, rationales."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

import sample_data
from foundation.tokens import tokenize
from foundation.types import Modality
from sample_data.headlines import COMPANIES, TEMPLATES, generate_headlines


def _all_splits() -> list[sample_data.Dataset]:
    return [sample_data.load("headlines", split) for split in ("train", "val", "test")]


def test_headline_splits_follow_the_contract() -> None:
    splits = _all_splits()
    assert [len(ds) for ds in splits] == [2100, 450, 450]
    for ds in splits:
        assert ds.modality is Modality.TEXT and ds.classes == ("negative", "neutral", "positive")
        assert isinstance(ds.x, list) and all(isinstance(text, str) for text in ds.x)
        assert ds.y.dtype == np.int64 and len(ds.rationales) == len(ds)
        assert ds.masks is None and ds.cue_masks is None
    ids = [set(ds.ids) for ds in splits]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_headlines_are_many_balanced_and_distinct() -> None:
    texts = [text for ds in _all_splits() for text in ds.x]
    labels = np.concatenate([ds.y for ds in _all_splits()])
    assert len(texts) >= 2400
    assert len(set(texts)) == len(texts)
    assert len({" ".join(tokenize(text)) for text in texts}) == len(texts)
    assert np.bincount(labels).tolist() == [1000, 1000, 1000]


def test_headlines_have_real_variety() -> None:
    texts = [text for ds in _all_splits() for text in ds.x]
    companies = {c.name for c in COMPANIES if any(c.name in t or c.ticker in t for t in texts)}
    assert len(COMPANIES) >= 60 and len(companies) >= 60
    assert len({c.sector for c in COMPANIES}) >= 8
    headlines = generate_headlines()
    templates = Counter(h.template for h in headlines)
    assert len(templates) >= 90
    assert sum("%" in t for t in texts) > 200 and sum("$" in t for t in texts) > 100
    # No single phrasing dominates.
    assert max(templates.values()) < 0.03 * len(headlines)


def test_negation_and_hedging_are_present_and_labelled_by_meaning() -> None:
    headlines = generate_headlines()
    share = sum(h.twist for h in headlines) / len(headlines)
    assert 0.08 < share < 0.16
    expected = {
        "less than feared": "positive",
        "did not cut": "positive",
        "narrower than expected": "positive",
        "not as strong as expected": "negative",
        "slower than expected": "negative",
        "neither raises nor cuts": "neutral",
    }
    for phrase, label in expected.items():
        matching = [h for h in headlines if phrase in h.text]
        assert len(matching) >= 5, phrase
        assert {"negative neutral positive".split()[h.label] for h in matching} == {label}, phrase


def test_rationales_are_tokens_of_their_text() -> None:
    for ds in _all_splits():
        for text, rationale in zip(ds.x, ds.rationales):
            tokens = tokenize(text)
            assert rationale, text
            assert all(token in tokens for token in rationale), (text, rationale)
            assert not re.search(r"[\[\]{}]", text), text


def _made_by(headlines: list, label: str, template: str) -> list:
    key = f"{label}/plain/{TEMPLATES[label]['plain'].index(template)}"
    return [h for h in headlines if h.template == key]


def test_rationales_carry_the_sentiment() -> None:
    headlines = generate_headlines()
    beats = _made_by(headlines, "positive", "{co} [beats] {q} profit estimates")
    assert beats and all(h.rationale == ("beats",) for h in beats)
    downgrades = _made_by(headlines, "negative", "{broker} [downgrades] {co} to [sell]")
    assert downgrades and all(h.rationale == ("downgrades", "sell") for h in downgrades)
    assert all(" downgrades " in h.text for h in downgrades)
    hedged = [h for h in headlines if "less than feared" in h.text]
    assert hedged and all(h.rationale == ("less", "than", "feared") for h in hedged)


def test_generation_is_deterministic() -> None:
    assert generate_headlines(300, seed=5) == generate_headlines(300, seed=5)
    assert generate_headlines(300, seed=5) != generate_headlines(300, seed=6)
