"""The first page can paint before TensorFlow is ready (issue 18).

On a fresh server the preload thread imports TensorFlow for about six seconds. A page module that
imports TensorFlow or Keras at its top (even indirectly) waits for that import's lock, so the
visitor saw a blank page instead of the title and the start-up's progress message. Measured before
the fix: the title appeared 9.9 s after the server's start, although the page's first run began at
4.7 s, because `ui.explain_reasons` imported `workbench.retrain` (and so Keras) for two constants.
"""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The router and the two pages a newcomer lands on (the image page is the default one).
FIRST_PAINT_FILES = ("app.py", "pages/explain_image.py", "pages/explain_text.py")
HEAVY = ("tensorflow", "keras")


def top_level_imports(path: Path) -> list[str]:
    """The modules a file imports at its top level (`from ui import kit` counts as `ui.kit`)."""
    modules: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                modules.append(candidate if importlib.util.find_spec(node.module) and _is_module(candidate)
                               else node.module)
    return modules


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize("relative", FIRST_PAINT_FILES)
def test_the_first_pages_import_neither_tensorflow_nor_keras(relative):
    modules = sorted(set(top_level_imports(REPO / relative)))
    assert any(m.startswith("ui.") for m in modules), modules  # the parser found the page's own imports
    script = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
              + f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert loaded == "", f"{relative} imports {loaded} at its top, so it cannot paint while TensorFlow starts"


def test_the_check_notices_a_module_that_imports_keras():
    """The same check on a module known to import Keras reports it (the test above can fail)."""
    script = "import sys\nimport workbench.retrain\nprint('keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr[-2000:]
