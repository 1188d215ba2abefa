"""Stage `leads_inputs`: a review as users keep it -> protocols, candidate records, quarantine.

Two ways in (``leads.review`` or ``leads.reviews_dir``):

- one review: a protocol file, candidate files (RIS, ASReview CSV, PubMed XML, ClinicalTrials.gov
  JSON; duplicates merged by PMID/DOI/NCT id/normalised title), a folder of full texts named by
  PMID, and gold labels (a CSV of pmid, included) when the files do not carry them;
- a folder of published reviews (TrialMind-SLR layout): one protocol per review, and as
  candidates the included studies of *all* reviews in the folder, each labelled included for
  its own review and excluded for the others (title-level screening, as the LEADS paper does).

Nothing is dropped silently: a record that cannot be screened (no title, a full text that
matches no record, a gold label for an unknown PMID) becomes a quarantine row with its reason,
and the counts land in the manifest.
"""

from __future__ import annotations

import csv
import hashlib
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.literature.protocol import Protocol, load_protocol, load_review_folder
from medreason_dist.literature.records import QUARANTINE_SCHEMA, RECORD_SCHEMA, load_records, normalize_pmid
from medreason_dist.literature.settings import LeadsConfig

PROTOCOL_SCHEMA = pa.schema([
    ("review_id", pa.string()),
    ("title", pa.string()),
    ("protocol_json", pa.string()),  # the validated Protocol as JSON (PICO, criteria, fields)
    ("criteria", pa.list_(pa.string())),  # ids I1.., E1..
    ("n_fields", pa.int32()),
    ("source", pa.string()),
    ("included_titles", pa.list_(pa.string())),  # gold for search recall (published reviews)
])

# The records of a run: the candidate schema plus the review they are screened for and the text
# the extraction reads. ``label_included`` is the gold decision when one is known.
LEADS_RECORD_SCHEMA = pa.schema([("review_id", pa.string())] + list(RECORD_SCHEMA) +
                                [("full_text", pa.string()), ("full_text_file", pa.string())])


@dataclass
class ReviewInputs:
    protocols: list[dict] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def local_file(ref: str, workdir: Path) -> Path:
    """A local path for ``ref`` (packaged:, a path, or a storage URI copied into ``workdir``)."""
    from medreason_dist.config import resolve_packaged

    ref = resolve_packaged(ref)
    if "://" not in ref or ref.startswith("file://"):
        return Path(storage.local_path(ref)) if ref.startswith("file://") else Path(ref)
    target = workdir / hashlib.sha256(ref.encode()).hexdigest()[:12] / ref.rstrip("/").rsplit("/", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(storage.read_bytes(ref))
    return target


def _quarantine(file: str, record: str, reason: str, detail: str = "") -> dict:
    return {"file": file, "record": record, "reason": reason, "detail": detail}


def _protocol_row(review_id: str, protocol: Protocol, source: str, included_titles: list[str]) -> dict:
    return {"review_id": review_id, "title": protocol.title, "protocol_json": protocol.model_dump_json(),
            "criteria": [c.id for c in protocol.criteria()], "n_fields": len(protocol.fields), "source": source,
            "included_titles": included_titles}


def _gold_labels(path: Path) -> dict[str, bool]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"pmid", "included"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"gold labels {path}: missing column(s) {', '.join(sorted(missing))}")
        out = {}
        for i, row in enumerate(reader, 2):
            pmid = normalize_pmid(row["pmid"])
            value = (row["included"] or "").strip().lower()
            if pmid is None or value not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"gold labels {path} line {i}: need a PMID and included 1/0, got "
                                 f"{row['pmid']!r}, {row['included']!r}")
            out[pmid] = value in ("1", "true", "yes")
        return out


def _full_texts(folder: Path) -> dict[str, tuple[str, str]]:
    texts = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in (".md", ".txt") and path.is_file():
            texts[path.stem] = (path.read_text(encoding="utf-8"), str(path))
    return texts


def one_review(cfg: LeadsConfig, workdir: Path) -> ReviewInputs:
    spec = cfg.review
    protocol_path = local_file(spec.protocol, workdir)
    protocol = load_protocol(protocol_path)
    review_id = protocol_path.parent.name or "review"
    loaded = load_records([local_file(c, workdir) for c in spec.candidates])
    out = ReviewInputs(stats=dict(loaded.stats))
    out.quarantine = loaded.quarantine.to_pylist()
    rows = loaded.records.to_pylist()
    by_pmid = {r["pmid"]: r for r in rows if r["pmid"]}
    if spec.gold_labels:
        gold_path = local_file(spec.gold_labels, workdir)
        for pmid, included in _gold_labels(gold_path).items():
            if pmid in by_pmid:
                by_pmid[pmid]["label_included"] = included
            else:
                out.quarantine.append(_quarantine(str(gold_path), pmid, "gold_label_without_record",
                                                  "no candidate record has this PMID"))
    texts = _full_texts(local_file(spec.fulltexts, workdir)) if spec.fulltexts else {}
    for row in rows:
        row.update(review_id=review_id, full_text=None, full_text_file=None)
        if row["pmid"] in texts:
            row["full_text"], row["full_text_file"] = texts.pop(row["pmid"])
    for stem, (_, path) in sorted(texts.items()):
        out.quarantine.append(_quarantine(path, stem, "fulltext_without_record",
                                          "the file name is not the PMID of a candidate record"))
    out.protocols = [_protocol_row(review_id, protocol, str(protocol_path), [])]
    if cfg.limit is not None and len(rows) > cfg.limit:
        # Records with a full text first, so a smoke run still exercises extraction.
        kept = sorted(range(len(rows)), key=lambda i: (not rows[i]["full_text"], i))[: cfg.limit]
        out.stats["not_taken_by_limit"] = len(rows) - cfg.limit
        rows = [rows[i] for i in sorted(kept)]
    out.records = rows
    out.stats["full_texts"] = sum(1 for r in rows if r["full_text"])
    return out


def _study_row(review_id: str, study, label: bool, source: str) -> dict:
    pmid = normalize_pmid(study.pmid) if study.pmid else None
    row = {name: None for name in LEADS_RECORD_SCHEMA.names}
    row.update(review_id=review_id, title=study.title, pmid=pmid, doi=study.doi, label_included=label,
               authors=[], mesh_terms=[], publication_types=[], keywords=[], source_files=[source],
               nct_ids=[study.nct_id] if study.nct_id else [], source_format="published_review", merged_from=1)
    row["record_id"] = f"pmid:{pmid}" if pmid else "title:" + hashlib.sha256(
        (study.title or "").lower().encode()).hexdigest()[:16]
    return row


def published_reviews(cfg: LeadsConfig, folder: Path, *, max_candidates: int | None, seed: int) -> ReviewInputs:
    """Every review of the folder; candidates = all reviews' included studies (see module doc)."""
    reviews = load_review_folder(folder)
    out = ReviewInputs()
    pool = []  # (owner review, study)
    for review in reviews:
        for study in review.included:
            if not study.title:
                out.quarantine.append(_quarantine(str(folder), f"{review.pmid}/{study.pmid or study.nct_id}",
                                                  "no_title", "title-level screening needs a title"))
                continue
            pool.append((review.pmid, study))
    for review in reviews:
        own = [s for owner, s in pool if owner == review.pmid]
        others = [s for owner, s in pool if owner != review.pmid]
        if max_candidates is not None:
            # Up to a quarter of the candidates are the review's own studies, the rest other reviews'
            # (a prevalence like a real screen's), drawn with the run seed.
            rng = random.Random(f"{seed}:{review.pmid}")
            keep_own = max(1, max_candidates // 4)
            own = rng.sample(own, min(len(own), keep_own))
            others = rng.sample(others, min(len(others), max_candidates - len(own)))
        seen = set()
        for study, label in [(s, True) for s in own] + [(s, False) for s in others]:
            row = _study_row(review.pmid, study, label, str(folder))
            if row["record_id"] in seen:  # the same study included by two reviews: counted once
                continue
            seen.add(row["record_id"])
            out.records.append(row)
        out.protocols.append(_protocol_row(review.pmid, review.protocol, str(folder),
                                           [s.title for s in review.included if s.title]))
    out.stats = {"reviews": len(reviews), "records": len(out.records), "quarantined": len(out.quarantine),
                 "included_studies": sum(len(r.included) for r in reviews)}
    return out


def load_inputs(cfg: LeadsConfig, *, seed: int = 0) -> ReviewInputs:
    """The review(s) of ``cfg``: ``reviews_dir`` when set, else ``review`` (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="leads-inputs-") as tmp:
        if cfg.reviews_dir:
            folder = Path(storage.local_path(cfg.reviews_dir)) if cfg.reviews_dir.startswith("file://") \
                else Path(cfg.reviews_dir)
            if not folder.is_dir():
                raise FileNotFoundError(f"leads.reviews_dir {cfg.reviews_dir} is not a local folder")
            return published_reviews(cfg, folder, max_candidates=cfg.max_candidates_per_review, seed=seed)
        return one_review(cfg, Path(tmp))


def write_inputs(inputs: ReviewInputs, protocols_uri: str, records_uri: str, quarantine_uri: str, *,
                 fingerprint: str, options) -> storage.Manifest:
    quarantine = pa.Table.from_pylist(inputs.quarantine, schema=QUARANTINE_SCHEMA)
    reasons: dict[str, int] = {}
    for q in inputs.quarantine:
        reasons[q["reason"]] = reasons.get(q["reason"], 0) + 1
    storage.write_table(quarantine_uri, quarantine, stage="leads_inputs.quarantine", config_hash=fingerprint,
                        rejects=reasons, options=options)
    storage.write_table(records_uri, pa.Table.from_pylist(inputs.records, schema=LEADS_RECORD_SCHEMA),
                        stage="leads_inputs.records", config_hash=fingerprint, rejects=reasons,
                        extra={"stats": inputs.stats}, options=options)
    return storage.write_table(protocols_uri, pa.Table.from_pylist(inputs.protocols, schema=PROTOCOL_SCHEMA),
                               stage="leads_inputs", config_hash=fingerprint, rejects=reasons,
                               extra={"stats": inputs.stats}, options=options)
