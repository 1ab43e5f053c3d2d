"""Where the workbench reads and writes. Everything written lives in one workspace folder."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ZOO_DIR = REPO_ROOT / "models" / "zoo"


def workspace_dir() -> Path:
    """The folder for everything the workbench writes (ledger, versions, caches, jobs).

    Set `WORKBENCH_HOME` to move it; by default it is `workspace/` in the repo (git-ignored).
    """
    path = Path(os.environ.get("WORKBENCH_HOME") or (REPO_ROOT / "workspace")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def workspace_subdir(name: str) -> Path:
    path = workspace_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """`WORKBENCH_DATABASE_URL` (e.g. postgresql+psycopg://...) or SQLite in the workspace."""
    url = os.environ.get("WORKBENCH_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{workspace_dir() / 'labels.sqlite'}"


def user_models_dir() -> Path | None:
    """Folder of administrator-provided `.keras` models (`WORKBENCH_MODELS_DIR`), if set."""
    value = os.environ.get("WORKBENCH_MODELS_DIR")
    return Path(value).expanduser() if value else None


def model_upload_allowed() -> bool:
    return os.environ.get("WORKBENCH_ALLOW_MODEL_UPLOAD", "").lower() in {"1", "true", "yes"}
