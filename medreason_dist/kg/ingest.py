"""``medreason-dist kg ingest``: fetch PrimeKG kg.csv, validate, write nodes / edges / quarantine.

The transform itself lives in :mod:`medreason_dist.kg.transform` (pure, no I/O); this module
resolves the source (local path, storage URI, ``packaged:`` data, or http(s) URL), streams it
through the transform and commits the three datasets with :mod:`medreason_dist.storage`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.kg.transform import BytesOpener, KGFormatError, TransformResult, transform_kg_csv

log = logging.getLogger(__name__)

# PrimeKG's kg.csv on Harvard Dataverse (doi:10.7910/DVN/IXA7BM, ~940 MB). The production
# config points kg.source here; it is a parameter everywhere so mirrors can be used.
PRIMEKG_KG_CSV_URL = "https://dataverse.harvard.edu/api/access/datafile/6180620"

STAGE_NODES = "kg_nodes"
STAGE_EDGES = "kg_edges"
STAGE_QUARANTINE = "kg_quarantine"

__all__ = [
    "PRIMEKG_KG_CSV_URL",
    "KGSourceError",
    "KGFormatError",
    "download",
    "ingest_primekg",
    "ingest_to_dir",
]


class KGSourceError(RuntimeError):
    """The kg.csv source could not be fetched or opened (HTTP error, missing file, truncation)."""

    exit_code = 2  # the config names a source that is not there: a usage error, not a crash


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def download(url: str, dest: Path, *, timeout: float = 60.0, chunk_size: int = 1 << 20,
             show_progress: bool | None = None) -> Path:
    """Stream ``url`` into ``dest`` with a tqdm progress bar.

    Raises :class:`KGSourceError` naming the URL and the HTTP status on failure, and when the
    server announced a Content-Length the body did not reach (a truncated download is exactly
    what produces the damaged kg.csv files this ingest guards against).
    """
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "medreason-dist-kg-ingest"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise KGSourceError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise KGSourceError(f"download of {url} failed: {reason}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                               desc=f"kg.csv <- {url}", disable=None if show_progress is None
                                               else not show_progress, leave=False) as bar:
                while True:
                    chunk = response.read(chunk_size)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, urllib.error.URLError) as err:
            raise KGSourceError(f"download of {url} failed after {received} bytes: {err}") from None
    if total is not None and received != total:
        raise KGSourceError(f"download of {url} is truncated: got {received} of {total} bytes")
    log.info("downloaded %s (%d bytes) to %s", url, received, dest)
    return dest


@contextmanager
def open_source(source: str, *, options: storage.StorageOptions | None = None,
                download_dir: str | None = None) -> Iterator[tuple[BytesOpener, str]]:
    """Yield ``(opener, description)`` for a kg.csv source; downloads are removed afterwards."""
    if source.startswith("packaged:"):
        from medreason_dist.config import resolve_packaged

        source = resolve_packaged(source)
    if _is_url(source):
        tmp = Path(tempfile.mkdtemp(prefix="kg-download-", dir=download_dir))
        try:
            # the file name keeps a .gz suffix so the reader decompresses it (pyarrow detects it)
            name = "kg.csv.gz" if source.split("?", 1)[0].endswith(".gz") else "kg.csv"
            path = download(source, tmp / name)
            yield (lambda: pa.input_stream(str(path))), source
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if "://" not in source:
        path = os.path.abspath(source)
        if not os.path.isfile(path):
            raise KGSourceError(f"kg.csv source {source!r} is not a file")
        yield (lambda: pa.input_stream(path)), path  # .gz and friends are detected by suffix
        return
    uri = storage.check_uri(source)
    fs, path = storage.filesystem(uri, options)
    info = fs.get_file_info(path)
    if info.type.name != "File":
        raise KGSourceError(f"kg.csv source {uri} is not a file ({info.type.name})")
    yield (lambda: fs.open_input_stream(path)), uri  # compression detected by suffix


def ingest_primekg(
    source: str,
    nodes_uri: str,
    edges_uri: str,
    quarantine_uri: str,
    *,
    options: storage.StorageOptions | None = None,
    config_hash: str = "",
    download_dir: str | None = None,
) -> dict[str, Any]:
    """Ingest a kg.csv into three committed datasets and return a summary.

    The summary holds the row counts, ``rejects`` (quarantined lines per reason) and the
    statistics that also go into every manifest's ``extra`` (node type and relation counts,
    self loops, edges seen in one direction only, ...). Bad lines never raise; a source that
    cannot be read, or a file that is not a kg.csv, raises :class:`KGSourceError` /
    :class:`KGFormatError`.
    """
    started = time.perf_counter()
    with open_source(source, options=options, download_dir=download_dir) as (opener, described):
        result = transform_kg_csv(opener)
    seconds = time.perf_counter() - started
    extra = {"source": described, **result.stats, "seconds": round(seconds, 3)}
    common = dict(config_hash=config_hash, rejects=result.rejects, extra=extra, options=options)
    # quarantine first: if the job dies later, the reasons for what is missing are already there
    q_manifest = storage.write_table(quarantine_uri, result.quarantine, stage=STAGE_QUARANTINE, **common)
    e_manifest = storage.write_table(edges_uri, result.edges, stage=STAGE_EDGES, **common)
    n_manifest = storage.write_table(nodes_uri, result.nodes, stage=STAGE_NODES, **common)
    summary = {
        "source": described,
        "nodes_uri": storage.check_uri(nodes_uri),
        "edges_uri": storage.check_uri(edges_uri),
        "quarantine_uri": storage.check_uri(quarantine_uri),
        "nodes": n_manifest.rows,
        "edges": e_manifest.rows,
        "quarantined": q_manifest.rows,
        "rejects": result.rejects,
        "rows_per_s": round(result.stats["rows_read"] / seconds, 1) if seconds > 0 else None,
        **{k: v for k, v in extra.items() if k not in ("source",)},
    }
    log.info("kg ingest: %d nodes, %d edges, %d quarantined %s from %s in %.1fs", summary["nodes"],
             summary["edges"], summary["quarantined"], result.rejects, described, seconds)
    return summary


def ingest_to_dir(source: str, out_uri: str, options: storage.StorageOptions | None = None,
                  config_hash: str = "") -> dict[str, Any]:
    """CLI entry: write ``<out>/nodes``, ``<out>/edges`` and ``<out>/quarantine``."""
    return ingest_primekg(
        source,
        storage.join(out_uri, "nodes"),
        storage.join(out_uri, "edges"),
        storage.join(out_uri, "quarantine"),
        options=options,
        config_hash=config_hash,
    )


def transform_source(source: str, options: storage.StorageOptions | None = None) -> TransformResult:
    """The in-memory tables for a source, without writing anything (tests, notebooks)."""
    with open_source(source, options=options) as (opener, _):
        return transform_kg_csv(opener)
