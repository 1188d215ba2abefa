"""Screening results as files reviewers open in their own tools.

- ``screening.csv``: one row per screened record, best score first per review, with the labels
  per criterion as ``I1``, ``E1``... columns and the rationales as ``I1_rationale``...;
- ``screening.ris``: the same records as RIS (title, abstract, authors, year, DOI, PMID as the
  accession number) with the model's decision as an ASReview label in the notes
  (``ASReview_relevant`` / ``ASReview_irrelevant``) and the score and rank as further notes, so
  a reviewer can import it into ASReview (or Zotero, EndNote) and continue from there.

Both are written by a worker task that reads the committed screening dataset; nothing passes
through the driver.
"""

from __future__ import annotations

import csv
import io

from medreason_dist import storage

RELEVANT, IRRELEVANT = "ASReview_relevant", "ASReview_irrelevant"


def ranked(rows: list[dict]) -> list[dict]:
    """Per review, best score first (ties keep the candidate order); each row gets its rank."""
    out = []
    for review in sorted({r["review_id"] for r in rows}):
        mine = [r for r in rows if r["review_id"] == review]
        for rank, r in enumerate(sorted(mine, key=lambda r: -(r["score"] if r["score"] is not None else -9)), 1):
            out.append(dict(r, rank=rank))
    return out


def screening_csv(rows: list[dict]) -> str:
    criteria = list(dict.fromkeys(lab["criterion"] for r in rows for lab in r["labels"] or []))
    sink = io.StringIO()
    writer = csv.writer(sink)
    writer.writerow(["review_id", "rank", "record_id", "pmid", "doi", "title", "score", "predicted_include",
                     "label_included", "screen_mode"] + criteria + [f"{c}_rationale" for c in criteria])
    for r in ranked(rows):
        labels = {lab["criterion"]: lab for lab in r["labels"] or []}
        writer.writerow([r["review_id"], r["rank"], r["record_id"], r["pmid"], r["doi"], r["title"],
                         f"{r['score']:.3f}", int(bool(r["predicted_include"])),
                         "" if r["label_included"] is None else int(r["label_included"]), r["screen_mode"]]
                        + [labels.get(c, {}).get("label", "") for c in criteria]
                        + [labels.get(c, {}).get("rationale", "") for c in criteria])
    return sink.getvalue()


def screening_ris(rows: list[dict]) -> str:
    import rispy

    entries = []
    for r in ranked(rows):
        entry = {"type_of_reference": "JOUR", "title": r["title"] or "",
                 "notes": [RELEVANT if r["predicted_include"] else IRRELEVANT,
                           f"screening score {r['score']:.3f}, rank {r['rank']} in review {r['review_id']}"]}
        for key, value in (("abstract", r["abstract"]), ("authors", r["authors"] or None), ("year", r["year"]),
                           ("doi", r["doi"]), ("accession_number", r["pmid"])):
            if value:
                entry[key] = str(value) if key == "year" else value
        entries.append(entry)
    return rispy.dumps(entries)


def export_screening(screening_uri: str, csv_uri: str, ris_uri: str, options) -> dict:
    columns = ["review_id", "record_id", "pmid", "doi", "title", "abstract", "authors", "year", "score",
               "predicted_include", "label_included", "screen_mode", "labels"]
    rows = storage.read_table(screening_uri, columns=columns, options=options).to_pylist()
    storage.write_bytes(csv_uri, screening_csv(rows).encode(), options)
    storage.write_bytes(ris_uri, screening_ris(rows).encode(), options)
    return {"rows": len(rows)}


def export_on_worker(screening_uri: str, csv_uri: str, ris_uri: str, options, cpus: float = 0.25) -> dict:
    import ray

    return ray.get(ray.remote(num_cpus=cpus)(export_screening).remote(screening_uri, csv_uri, ris_uri, options))
