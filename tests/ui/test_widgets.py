"""The class-probability bars (ui/widgets.py): the top classes in order, each name shown literally."""
from __future__ import annotations

import re

from ui import widgets


def _rows(markup: str) -> list[tuple[str, str]]:
    """(name as written, percentage) per bar, in order."""
    return re.findall(r'<div role="listitem"[^>]*><span[^>]*>(.*?)</span>.*?>([\d.]+%)</span></div>', markup)


def test_the_top_five_classes_most_probable_first():
    classes = [str(i) for i in range(10)]
    probabilities = [0.01, 0.02, 0.5, 0.03, 0.2, 0.04, 0.1, 0.05, 0.03, 0.02]
    rows = _rows(widgets.probability_bars_html(classes, probabilities))
    assert rows == [("2", "50.0%"), ("4", "20.0%"), ("6", "10.0%"), ("7", "5.0%"), ("5", "4.0%")]
    assert 'aria-label="Class probabilities, the top 5"' in widgets.probability_bars_html(classes, probabilities)


def test_a_hostile_class_name_is_text_and_never_inside_a_tag():
    name = '"><img src=x onerror=alert(1)>'
    markup = widgets.probability_bars_html([name, "dog"], [0.7, 0.3])
    assert _rows(markup)[0] == ("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;", "70.0%")
    assert not re.search(r"<[^>]*onerror", markup)  # no tag carries the name, even escaped


def test_bar_widths_stay_within_the_track():
    markup = widgets.probability_bars_html(["a", "b"], [1.0000001, -0.0])
    assert "width:100.0%" in markup and "width:0.0%" in markup
