"""Self-contained HTML reports: nothing external, nothing executable, everything escaped, images embedded."""
import base64
import io
import re
import types
from html.parser import HTMLParser

import numpy as np
import pandas as pd
from PIL import Image

from foundation.types import Explanation, Modality
from models.manifest import Manifest
from workbench import reports

HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)><a href="https://evil.example/">'
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "main", "section",
                "table", "thead", "tbody", "tr", "th", "td", "div", "figure", "img", "figcaption", "blockquote",
                "span", "footer"}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)

    def handle_data(self, data):
        self.text.append(data)


def _parse(document: str) -> _Collector:
    parser = _Collector()
    parser.feed(document)
    return parser


def _info(fields: dict) -> Manifest:
    """A fake model's typed manifest: the given manifest.json fields on an image model."""
    return Manifest.from_dict({"modality": "image", "classes": ["a"], **fields})


def _image_explanation() -> Explanation:
    values = np.zeros((8, 8), np.float32)
    values[2:4, 5:7] = 1.0
    return Explanation(method="gradcam", modality=Modality.IMAGE, target=1, target_label=HOSTILE, values=values,
                       model_name="shapes", model_version="v3", seconds=0.0123, params={"layer": "conv", "alpha": 0.5},
                       seed=42)


def _hostile_report() -> str:
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :, 0] = 200
    model = types.SimpleNamespace(name=HOSTILE, version="v3", modality=Modality.IMAGE, classes=["a", HOSTILE],
                                  info=_info({"sha256": "ab" * 32, "dataset": HOSTILE,
                                              "metrics": {"test": {"accuracy": 0.9}}}))
    text = Explanation(method="lime", modality=Modality.TEXT, target=0, target_label="negative",
                       values=np.array([0.5, -0.25], np.float32), model_name="headlines", model_version="v1",
                       seconds=0.5, tokens=("<b>bold</b>", HOSTILE), seed=7)
    sections = [
        reports.model_section(model),
        reports.explanation_section(_image_explanation(), image, text=HOSTILE),
        reports.explanation_section(text),
        reports.trust_section({"deletion AUC": 0.1234, HOSTILE: 1, "per method": {"gradcam": 0.5, HOSTILE: 0.2}}),
        reports.notes_section([{"annotator": HOSTILE, "note": HOSTILE, "example_id": "shapes-00001",
                                "created_at": "2026-01-01"}]),
        reports.table_section(HOSTILE, pd.DataFrame({HOSTILE: [HOSTILE, "=1+1"], "n": [1, 2]})),
        reports.Section(HOSTILE, paragraphs=(HOSTILE,), facts={HOSTILE: HOSTILE},
                        figures=(reports.Figure(image, HOSTILE),)),
    ]
    return reports.build_html(HOSTILE, sections, subtitle=HOSTILE)


def test_report_is_self_contained_and_inert():
    document = _hostile_report()
    parsed = _parse(document)
    assert set(parsed.tags) <= ALLOWED_TAGS, set(parsed.tags) - ALLOWED_TAGS
    assert "script" not in parsed.tags and "<script" not in document.lower()
    # No event handler, no link, no remote or relative resource: only data: images.
    for tag, name, value in parsed.attrs:
        assert not name.startswith("on"), (tag, name)
        assert name != "href", (tag, name, value)
        if name == "src":
            assert value.startswith("data:image/png;base64,"), value
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", document, re.I)
    assert "@import" not in document and "url(" not in document
    (policy,) = [v for tag, name, v in parsed.attrs if tag == "meta" and name == "content"
                 and "default-src" in (v or "")]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_hostile_strings_come_back_as_text():
    parsed = _parse(_hostile_report())
    text = "".join(parsed.text)
    # The parser unescapes text nodes: the hostile string is there, verbatim, as text (not markup).
    assert HOSTILE in text
    assert "<b>bold</b>" in text  # a token shown literally
    alts = [value for tag, name, value in parsed.attrs if name == "alt"]
    assert HOSTILE in alts


def test_images_are_embedded_pngs_that_round_trip():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    document = reports.build_html("t", [reports.Section("s", figures=(reports.Figure(image, "raw"),))])
    (src,) = [v for _, name, v in _parse(document).attrs if name == "src"]
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))
    np.testing.assert_array_equal(decoded, image)


def test_explanation_section_records_method_parameters_seed_and_version():
    section = reports.explanation_section(_image_explanation(), np.zeros((8, 8, 3), np.uint8))
    assert section.facts["method"] == "gradcam" and section.facts["seed"] == 42
    assert section.facts["model version"] == "shapes v3"
    assert section.facts["parameter layer"] == "conv" and section.facts["parameter alpha"] == 0.5
    assert len(section.figures) == 2  # input and overlay
    document = reports.build_html("r", [section])
    assert "parameter layer" in document and "shapes v3" in document and "42" in document


def test_explanation_section_says_how_far_the_rounds_got():
    import dataclasses

    from explainers.rounds import RoundResult, run_rounds

    assert "evaluations" not in reports.explanation_section(_image_explanation()).facts  # Grad-CAM has no rounds
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=30) for _ in range(3)]  # unrelated maps: the rounds never settle
    record = run_rounds([100, 200, 400], lambda b: RoundResult(maps[b // 200], None, b))[1]
    lime = dataclasses.replace(_image_explanation(), method="lime", extras=record)
    facts = reports.explanation_section(lime).facts
    assert facts["evaluations"].startswith("not stable within the budget (400 evaluations)")


def test_model_section_shows_the_sha256():
    model = types.SimpleNamespace(name="digits", version="v2", modality=Modality.IMAGE, classes=["0", "1"],
                                  info=_info({"sha256": "f" * 64, "dataset": "digits"}))
    document = reports.build_html("r", [reports.model_section(model)])
    assert "f" * 64 in document and '<td class="sha">' in document


def test_print_stylesheet_and_long_tables():
    rows = [{"i": i} for i in range(reports.MAX_TABLE_ROWS + 5)]
    document = reports.build_html("r", [reports.table_section("big", rows)])
    assert "@media print" in document and "break-inside" in document and "@page" in document
    assert document.count("<tr>") == reports.MAX_TABLE_ROWS + 1  # header + the rows kept
    assert f"of {len(rows):,} rows" in document


def test_file_names_are_safe():
    name = reports.report_filename('../../etc/passwd <x> "report"')
    assert re.fullmatch(r"[a-z0-9-]+-\d{8}\.html", name), name
    assert reports.build_report("t", []).startswith(b"<!doctype html>")
