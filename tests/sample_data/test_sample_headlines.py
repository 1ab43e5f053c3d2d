"""The headlines dataset: size, variety, negation, rationales, splits grouped by phrasing."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

import sample_data
from foundation.tokens import tokenize
from foundation.types import Modality
from sample_data.headlines import CLASSES, COMPANIES, TEMPLATES, generate_headlines, template_split
from sample_data.noisy import flipped_payload, read_flipped
from sample_data.splits import grouped_split


def _all_splits() -> list[sample_data.Dataset]:
    return [sample_data.load("headlines", split) for split in ("train", "val", "test")]


def test_headline_splits_follow_the_contract() -> None:
    splits = _all_splits()
    assert [len(ds) for ds in splits] == [2093, 459, 448]
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


def _templates_by_split() -> dict[str, list[str]]:
    """The template of every example of each split, read back through its id."""
    headlines = generate_headlines()
    return {
        ds.split: [headlines[int(example_id.rsplit("-", 1)[1])].template for example_id in ds.ids]
        for ds in _all_splits()
    }


def test_no_phrasing_template_sits_in_two_splits() -> None:
    templates = {split: set(names) for split, names in _templates_by_split().items()}
    assert not (templates["train"] & templates["val"])
    assert not (templates["train"] & templates["test"])
    assert not (templates["val"] & templates["test"])
    assert len(templates["train"] | templates["val"] | templates["test"]) == 104
    assert [len(templates[split]) for split in ("train", "val", "test")] == [73, 15, 16]


def test_every_split_has_every_class_and_kind_of_phrasing() -> None:
    by_split = _templates_by_split()
    for ds in _all_splits():
        assert set(ds.y.tolist()) == {0, 1, 2}, ds.split
        strata = {t.rsplit("/", 1)[0] for t in by_split[ds.split]}
        assert strata == {f"{label}/{kind}" for label in CLASSES for kind in ("plain", "twist")}, ds.split
        # The ids carry the template's label: the split did not mix them up.
        assert [CLASSES.index(t.split("/")[0]) for t in by_split[ds.split]] == ds.y.tolist()
    counts = {ds.split: np.bincount(ds.y, minlength=3).tolist() for ds in _all_splits()}
    assert counts == {"train": [714, 670, 709], "val": [132, 175, 152], "test": [154, 155, 139]}
    # Roughly 70/15/15 within every class.
    for label in range(3):
        total = sum(counts[split][label] for split in counts)
        assert 0.62 < counts["train"][label] / total < 0.78
        assert 0.10 < counts["val"][label] / total < 0.20 and 0.10 < counts["test"][label] / total < 0.20


def test_template_split_is_deterministic_and_covers_every_headline() -> None:
    headlines = generate_headlines()
    first, again = template_split(headlines), template_split(headlines)
    assert all(np.array_equal(first[split], again[split]) for split in ("train", "val", "test"))
    every = np.sort(np.concatenate(list(first.values())))
    assert np.array_equal(every, np.arange(len(headlines)))


def test_regenerated_flips_match_the_committed_file() -> None:
    committed = read_flipped("headlines")
    assert committed == flipped_payload("headlines")
    train = sample_data.load("headlines", "train")
    assert set(committed["flipped"]) <= set(train.ids)
    assert len(committed["flipped"]) == round(0.05 * len(train)) == 105
    noisy = sample_data.load("headlines", "train_noisy")
    assert noisy.flipped_ids == frozenset(committed["flipped"])
    assert int((noisy.y != train.y).sum()) == 105


def test_grouped_split_keeps_groups_whole_within_strata() -> None:
    groups = [f"g{i // 5}" for i in range(200)]  # 40 groups of 5
    strata = ["a" if i < 100 else "b" for i in range(200)]
    parts = grouped_split(groups, strata, seed=1)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(200))
    for name, index in parts.items():
        other = np.concatenate([parts[n] for n in parts if n != name])
        assert not {groups[i] for i in index} & {groups[i] for i in other}
        assert {strata[i] for i in index} == {"a", "b"}, name
    assert [len(parts[n]) for n in ("train", "val", "test")] == [140, 30, 30]
    try:
        grouped_split(["x", "x"], ["a", "b"], seed=1)
    except ValueError:
        pass
    else:
        raise AssertionError("a group spanning two strata must be refused")
