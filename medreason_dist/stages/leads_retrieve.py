"""Stage `leads_retrieve` (``leads search --execute``): run the accepted queries through the
PubMed E-utilities and ClinicalTrials.gov API v2 clients.

One Ray task per review does the HTTP work (the clients keep their own rate limits and retries)
and writes its rows as Parquet files into the attempt folders of the outputs; the driver only
commits those folders. A query a service refuses or that fails after retries becomes a row of
``leads/retrieve_errors`` with the service, the query and the reason; an article that cannot be
parsed becomes one too. With ``leads.pubmed.base_url: fixture`` (the embedded default) the stage
serves the run's own candidate records on 127.0.0.1 in the E-utilities formats, and generated
trials in the API v2 format, so the whole path runs offline.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medreason_dist import storage
from medreason_dist.literature.ctgov import ARM_SCHEMA, MEASUREMENT_SCHEMA, STUDY_SCHEMA
from medreason_dist.literature.records import RECORD_SCHEMA
from medreason_dist.literature.settings import FIXTURE

RETRIEVED_SCHEMA = pa.schema([("review_id", pa.string()), ("query", pa.string())] + list(RECORD_SCHEMA))
ERROR_SCHEMA = pa.schema([("review_id", pa.string()), ("service", pa.string()), ("query", pa.string()),
                          ("item", pa.string()), ("reason", pa.string()), ("detail", pa.string())])


def _with_review(schema: pa.Schema) -> pa.Schema:
    return pa.schema([("review_id", pa.string())] + list(schema))


TABLES = {"records": RETRIEVED_SCHEMA, "trials": _with_review(STUDY_SCHEMA), "arms": _with_review(ARM_SCHEMA),
          "measurements": _with_review(MEASUREMENT_SCHEMA), "errors": ERROR_SCHEMA}


@contextlib.contextmanager
def fixture_endpoints(cfg, records_uri: str):
    """Base URLs for the clients; loopback fixture services for the ones configured as 'fixture'."""
    import datetime as dt

    from medreason_dist.literature.fixture_services import FakeCtGov, FakeEutils, study

    started = []
    pubmed_url, ctgov_url = cfg.leads.pubmed.base_url, cfg.leads.ctgov.base_url
    try:
        if pubmed_url == FIXTURE:
            cols = ["pmid", "year", "title", "abstract"]
            rows = storage.read_table(records_uri, columns=cols, options=cfg.storage).to_pylist()
            corpus = [(r["pmid"], dt.date(r["year"] or 2000, 1, 1), r["title"] or "", r["abstract"] or "")
                      for r in rows if r["pmid"]]
            server = FakeEutils(corpus).start()
            started.append(server)
            pubmed_url = server.base_url
        if ctgov_url == FIXTURE:
            conditions = ["Knee Osteoarthritis", "Osteoarthritis, Knee", "Hip Osteoarthritis", "Low Back Pain"]
            server = FakeCtGov([study(i, conditions[i % len(conditions)], with_results=i % 2 == 0)
                                for i in range(12)]).start()
            started.append(server)
            ctgov_url = server.base_url
        yield pubmed_url, ctgov_url
    finally:
        for server in started:
            server.stop()


def _put_parquet(uri: str, table: pa.Table, options) -> dict:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    storage.write_bytes(uri, sink.getvalue(), options)
    return {"rows": table.num_rows}


def retrieve_review(query: dict[str, Any], settings: dict[str, Any], attempts: dict[str, str], options) -> dict:
    """Worker body: one review's PubMed and ClinicalTrials.gov searches, written as Parquet files."""
    from medreason_dist.literature.ctgov import CtGovClient
    from medreason_dist.literature.http import ServiceError
    from medreason_dist.literature.pubmed import PubMedClient

    review = query["review_id"]
    out: dict[str, list[dict]] = {name: [] for name in TABLES}

    def failed(service: str, q: str, item: str, reason: str, detail: str) -> None:
        out["errors"].append({"review_id": review, "service": service, "query": q, "item": item,
                              "reason": reason, "detail": detail[:500]})

    if query.get("pubmed_query"):
        q = query["pubmed_query"]
        try:
            client = PubMedClient(settings["pubmed_url"], api_key_env=settings["api_key_env"],
                                  email=settings["email"])
            fetched = client.fetch(q, limit=settings["max_records"])
            out["records"] = [{"review_id": review, "query": q, **row} for row in fetched.rows]
            for bad in fetched.quarantined:
                failed("pubmed", q, bad.record, bad.reason, bad.detail)
        except (ServiceError, OSError, ValueError) as err:
            failed("pubmed", q, "", "service_error", str(err))
    ct = {k: query.get(f"ctgov_{k}") for k in ("cond", "intr", "term")}
    if any(ct.values()):
        q = " | ".join(f"query.{k}={v}" for k, v in ct.items() if v)
        try:
            client = CtGovClient(settings["ctgov_url"])
            rows, bad = client.search(limit=settings["max_studies"], page_size=settings["page_size"],
                                      **{k: v for k, v in ct.items() if v})
            for name, items in (("trials", rows.studies), ("arms", rows.arms), ("measurements", rows.measurements)):
                out[name] = [{"review_id": review, **item} for item in items]
            for position, reason in bad:
                failed("ctgov", q, str(position), "malformed_study", reason)
        except (ServiceError, OSError, ValueError) as err:
            failed("ctgov", q, "", "service_error", str(err))
    counts = {}
    for name, schema in TABLES.items():
        if out[name]:
            table = pa.Table.from_pylist(out[name], schema=schema)
            _put_parquet(storage.join(attempts[name], f"review-{_safe(review)}.parquet"), table, options)
        counts[name] = len(out[name])
    for e in out["errors"]:
        counts[f"error.{e['service']}.{e['reason']}"] = counts.get(f"error.{e['service']}.{e['reason']}", 0) + 1
    return counts


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:80]


def retrieve(cfg, search_uri: str, records_uri: str, uris: dict[str, str], *, fingerprint: str,
             cpus: float = 0.25) -> dict[str, storage.Manifest]:
    """Run every review's queries on workers, then commit the five outputs (``uris`` by table)."""
    import ray

    options = cfg.storage
    queries = storage.read_table(search_uri, columns=["review_id", "pubmed_query", "ctgov_cond", "ctgov_intr",
                                                     "ctgov_term"], options=options).to_pylist()
    attempts = {name: storage.join(uri, storage.ATTEMPTS_DIR, fingerprint) for name, uri in uris.items()}
    for attempt in attempts.values():
        storage.delete_dir(attempt, options)  # whole reviews are redone: a search is not resumable mid-way
    task = ray.remote(num_cpus=cpus, max_retries=1)(retrieve_review)
    totals: dict[str, int] = {name: 0 for name in TABLES}
    with fixture_endpoints(cfg, records_uri) as (pubmed_url, ctgov_url):
        settings = {"pubmed_url": pubmed_url, "ctgov_url": ctgov_url, "api_key_env": cfg.leads.pubmed.api_key_env,
                    "email": cfg.leads.pubmed.email, "max_records": cfg.leads.pubmed.max_records,
                    "max_studies": cfg.leads.ctgov.max_studies, "page_size": cfg.leads.ctgov.page_size}
        for counts in ray.get([task.remote(q, settings, attempts, options) for q in queries]):
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + n
    manifests = {}
    reasons = {k[len("error."):]: v for k, v in totals.items() if k.startswith("error.")}
    for name in ("errors", "arms", "measurements", "trials", "records"):  # the main output last
        manifests[name] = storage.commit_attempt(
            uris[name], attempts[name], stage="leads_retrieve" + ("" if name == "records" else f".{name}"),
            config_hash=fingerprint, schema=TABLES[name], rejects=reasons if name in ("records", "errors") else None,
            options=options, extra={"queries": len(queries), "counts": totals} if name == "records" else None)
    return manifests
