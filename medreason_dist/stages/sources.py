"""Stage `sources`: normalise every configured QA source into one schema.

Output datasets: ``<out>/sources/qa`` (good rows) and ``<out>/sources/quarantine`` (bad rows
with their reason). Both manifests carry the reject counts by reason.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from tqdm import tqdm

from medreason_dist import storage
from medreason_dist.config import SourceSpec
from medreason_dist.sources.adapters import get_adapter
from medreason_dist.sources.readers import read_records
from medreason_dist.sources.schema import QA_SCHEMA, QUARANTINE_SCHEMA, BadRow

log = logging.getLogger(__name__)


@dataclass
class NormalizedSources:
    qa: pa.Table
    quarantine: pa.Table
    rejects: Counter = field(default_factory=Counter)
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)


def normalize_sources(
    specs: list[SourceSpec], options: storage.StorageOptions | None = None, progress: bool = True,
    dedupe: bool = True,
) -> NormalizedSources:
    """Read and normalise the sources; never raises on a bad record.

    With ``dedupe`` a row whose content id was already seen (in any source) is quarantined as
    ``duplicate``. Evaluation sets pass ``dedupe=False``: a benchmark keeps its published size
    even where it repeats an item (MedBullets does), so scores stay comparable.
    """
    good: list[dict] = []
    bad: list[dict] = []
    rejects: Counter = Counter()
    per_source: dict[str, dict[str, int]] = {}
    seen: dict[str, str] = {}
    for spec in specs:
        adapter = get_adapter(spec.adapter)
        display, records = read_records(spec, options)
        counts = Counter()
        for number, rec, raw in tqdm(records, desc=f"source {spec.name}", disable=not progress, unit="row"):
            if spec.limit is not None and counts["read"] >= spec.limit:
                break
            counts["read"] += 1
            try:
                if isinstance(rec, BadRow):
                    raise rec
                row = adapter(rec, spec.name, spec.split, spec.options)
                if dedupe and row["id"] in seen:
                    raise BadRow("duplicate", f"same content as an earlier row of {seen[row['id']]}")
            except BadRow as err:
                bad.append({"source": spec.name, "file": display, "row": number, "reason": err.reason,
                            "detail": err.detail, "raw": raw})
                rejects[err.reason] += 1
                counts["quarantined"] += 1
                continue
            except Exception as err:  # an adapter bug must not lose the row either
                bad.append({"source": spec.name, "file": display, "row": number, "reason": "adapter_error",
                            "detail": f"{type(err).__name__}: {err}", "raw": raw})
                rejects["adapter_error"] += 1
                counts["quarantined"] += 1
                continue
            seen[row["id"]] = f"{spec.name} row {number}"
            good.append(row)
            counts["kept"] += 1
        per_source[spec.name] = dict(counts)
        log.info("source %s: %s", spec.name, json.dumps(dict(counts)))
    return NormalizedSources(
        qa=pa.Table.from_pylist(good, schema=QA_SCHEMA),
        quarantine=pa.Table.from_pylist(bad, schema=QUARANTINE_SCHEMA),
        rejects=rejects,
        per_source=per_source,
    )


def write_sources(
    result: NormalizedSources, qa_uri: str, quarantine_uri: str, *, config_hash: str,
    options: storage.StorageOptions | None = None, stage: str = "sources",
) -> storage.Manifest:
    extra = {"per_source": result.per_source}
    storage.write_table(quarantine_uri, result.quarantine, stage=stage + ".quarantine",
                        config_hash=config_hash, rejects=dict(result.rejects), extra=extra, options=options)
    # The main output is committed last: its manifest is the stage's completion marker.
    return storage.write_table(qa_uri, result.qa, stage=stage, config_hash=config_hash,
                               rejects=dict(result.rejects), extra=extra, options=options)
