"""The page icons are emoji: without a colour emoji font, screenshots show empty boxes."""
import os
import shutil
import subprocess

import pytest


def test_an_emoji_font_covers_the_page_icons():
    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig's fc-list is missing (it comes with chromium)")
    # 🔍 (U+1F50D, the app icon) and 🖼 (U+1F5BC, Explain image).
    found = subprocess.run(["fc-list", ":charset=1f50d 1f5bc", "family"], capture_output=True, text=True).stdout
    if not found.strip() and os.environ.get("CI") != "true":
        pytest.skip("no emoji font: `apt-get install fonts-noto-color-emoji` (.ci/run does this)")
    assert found.strip(), "no installed font has the page icons' emoji; .ci/run must install fonts-noto-color-emoji"
