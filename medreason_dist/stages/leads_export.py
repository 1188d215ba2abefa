"""Results as files reviewers open in their own tools (spreadsheets, ASReview, reference managers).

- ``screening.csv``: one row per screened record, best score first per review, with the labels
  per criterion as ``I1``, ``E1``... columns and the rationales as ``I1_rationale``...;
- ``screening.ris``: the same records as RIS (title, abstract, authors, year, DOI, PMID as the
  accession number) with the model's decision as an ASReview label in the notes
  (``ASReview_relevant`` / ``ASReview_irrelevant``) and the score and rank as further notes, so
  a reviewer can import it into ASReview (or Zotero, EndNote) and continue from there.

- ``extraction.csv``: one row per study and extracted value — characteristics by field, arm
  groups, participant statistics and results — with the unit, group, time frame and evidence.

They are written by worker tasks that read the committed datasets; nothing passes through the
driver.
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


EXTRACTION_COLUMNS = ["review_id", "pmid", "title", "kind", "name", "group", "param_type", "unit", "time_frame",
                      "value", "reported", "evidence"]


def extraction_rows(study: dict) -> list[dict]:
    """The long form of one extraction row: a line per characteristic, arm, statistic, result."""
    base = {"review_id": study["review_id"], "pmid": study["pmid"], "title": study["title"]}
    out = [dict(base, kind="characteristic", name=c["field"], value=c["value"], reported=c["reported"],
                evidence=c["evidence"]) for c in study["characteristics"] or []]
    out += [dict(base, kind="arm", name=a["label"], value=a["type"], reported=True, evidence=a["evidence"],
                 group="; ".join(a["intervention_names"] or [])) for a in study["arms"] or []]
    out += [dict(base, kind="participants", name=p["measure"], group=p["group"], param_type=p["param_type"],
                 unit=p["unit"], value=p["value"], reported=p["reported"], evidence=p["evidence"])
            for p in study["participants"] or []]
    out += [dict(base, kind="result", name=r["outcome"], group=r["group"], param_type=r["param_type"],
                 unit=r["unit"], time_frame=r["time_frame"], value=r["value"], reported=r["reported"],
                 evidence=r["evidence"]) for r in study["results"] or []]
    return out


def export_extraction(extraction_uri: str, csv_uri: str, options) -> dict:
    columns = ["review_id", "pmid", "title", "characteristics", "arms", "participants", "results"]
    rows = [line for study in storage.read_table(extraction_uri, columns=columns, options=options).to_pylist()
            for line in extraction_rows(study)]
    sink = io.StringIO()
    writer = csv.DictWriter(sink, fieldnames=EXTRACTION_COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(rows)
    storage.write_bytes(csv_uri, sink.getvalue().encode(), options)
    return {"rows": len(rows)}


def on_worker(fn, *args, cpus: float = 0.25):
    """Run an export on a worker (it reads and writes storage itself) and wait for it."""
    import ray

    return ray.get(ray.remote(num_cpus=cpus)(fn).remote(*args))
