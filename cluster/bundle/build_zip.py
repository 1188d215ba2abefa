"""Write the medreason_dist package as a zip for spark-submit --py-files / python_file_uris.

    python cluster/bundle/build_zip.py build/bundle/medreason_dist.zip

Only the package tree goes in (no tests, caches or bytecode); entries are sorted and carry a fixed
timestamp, so the same source gives the same bytes and an unchanged upload can be skipped.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip cannot store dates before 1980; any constant will do


def package_files(root: Path) -> list[Path]:
    pkg = root / "medreason_dist"
    return sorted(p for p in pkg.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))


def build(out: Path, root: Path = REPO) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in package_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)  # readers never see a half-written zip
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_zip.py OUT.zip")
    print(build(Path(sys.argv[1])))
