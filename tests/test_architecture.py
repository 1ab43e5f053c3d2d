"""The one-way floors of docs/architecture.md hold, and the contracts would catch a violation.

`lint-imports` reads the contracts in pyproject.toml. The first test runs it on the real
tree. The second copies the tree, plants one forbidden import at a time (inside a function,
where such arrows used to hide) and checks that the linter then fails, so a contract that
has gone toothless fails the suite too.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("foundation", "explainers", "models", "labels", "sample_data", "workbench", "benchmarks",
            "commandline", "ui", "pages")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# (file that gets the import, module it imports): the inversions issue 11 listed, in today's
# names, plus the streamlit rule and a cycle between two domain packages.
PLANTED_INVERSIONS = [
    ("models/model_card.py", "workbench.api"),
    ("models/model_card.py", "explainers.metrics"),
    ("models/training.py", "labels"),
    ("models/store.py", "workbench.datasets"),
    ("sample_data/headlines.py", "models.loaded"),
    ("benchmarks/first_shap.py", "ui.loaders"),
    ("benchmarks/explainers_bench.py", "commandline.commands.bench"),
    ("benchmarks/explainers_bench.py", "explainers.gradcam"),
    ("workbench/api.py", "streamlit"),
    ("workbench/jobs.py", "commandline.cli"),
    ("labels/queue.py", "workbench.datasets"),
    ("labels/features.py", "workbench.dataset_view"),
    ("explainers/metrics.py", "labels.queue"),
    ("foundation/config.py", "models.store"),
    ("ui/sidebar.py", "benchmarks.app_bench"),
    ("pages/explain_image.py", "explainers.render"),
    ("pages/review.py", "labels.ledger"),
    ("ui/kit/__init__.py", "pages.review"),
]


def run_lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)


def test_the_package_graph_keeps_every_contract():
    result = run_lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "zoo", "*.keras"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize("target, imported", PLANTED_INVERSIONS, ids=[f"{t}->{i}" for t, i in PLANTED_INVERSIONS])
def test_a_planted_inversion_breaks_a_contract(tree_copy, target, imported):
    path = tree_copy / target
    original = path.read_text(encoding="utf-8")
    # Inside a function: grimp counts it like any other import.
    path.write_text(original + f"\n\ndef _planted():\n    import {imported}  # noqa: F401\n", encoding="utf-8")
    try:
        result = run_lint(tree_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0, f"importing {imported} from {target} passed every contract"
    assert "BROKEN" in result.stdout
