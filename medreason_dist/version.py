"""Code version recorded in every manifest: package version plus the git commit when known."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

__version__ = "0.1.0"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    try:
        version = metadata.version("medreason_dist")
    except metadata.PackageNotFoundError:
        version = __version__
    repo = Path(__file__).resolve().parent.parent
    if (repo / ".git").exists():
        try:
            sha = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=5,
            ).stdout.strip()
            return f"{version}+g{sha}{'.dirty' if dirty else ''}"
        except (OSError, subprocess.SubprocessError):
            pass
    return version
