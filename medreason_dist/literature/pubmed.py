"""PubMed through NCBI E-utilities: esearch on the history server, efetch in batches.

- ``esearch`` with ``usehistory=y`` keeps the result set on NCBI's side (WebEnv + query_key);
  ``efetch`` then pages through it, at most :data:`MAX_BATCH` records per request.
- PubMed gives at most :data:`MAX_RECORDS` records of one search; a search that matches more is
  split into publication-date slices (halving the range until each slice fits) and the slices'
  PMIDs are put together without repeats.
- 3 requests/s without an API key, 10 with one. The key is read from the environment variable
  the config names (default ``NCBI_API_KEY``) and appears in no log or error message.
- 429 and 5xx answers, connection errors and cut-off bodies are retried with backoff
  (:mod:`medreason_dist.literature.http`).
- The articles are parsed by :mod:`medreason_dist.literature.records` (the same rows as a
  PubMed XML file a user brings); an article that cannot become a row is quarantined.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Iterator

from medreason_dist.literature import records as R
from medreason_dist.literature.http import HttpClient, RetryPolicy, ServiceError

DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
MAX_BATCH = 200
MAX_RECORDS = 9999  # PubMed returns no more than the first 10,000 records of a search


@dataclass
class SearchResult:
    count: int
    webenv: str
    query_key: str
    translation: str = ""


@dataclass
class FetchedRecords:
    pmids: list[str]
    rows: list[dict]
    quarantined: list[R.Quarantined] = field(default_factory=list)
    slices: list[tuple[str, str, int]] = field(default_factory=list)  # (mindate, maxdate, count)
    beyond_cap: int = 0  # records of a one-day slice still over the cap: PubMed will not return them


def _json(body: bytes) -> dict:
    data = json.loads(body)
    if not isinstance(data, dict) or "esearchresult" not in data:
        raise ValueError("not an esearch JSON reply")
    return data["esearchresult"]


def _xml(body: bytes):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(body, parser)  # XMLSyntaxError is a ValueError: a cut-off body is retried
    if root.tag != "PubmedArticleSet":
        raise ValueError(f"efetch returned <{root.tag}>, not <PubmedArticleSet>")
    return root


def _date(value: dt.date) -> str:
    return value.strftime("%Y/%m/%d")


class PubMedClient:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key_env: str = "NCBI_API_KEY",
                 email: str | None = None, tool: str = "medreason_dist", retry: RetryPolicy | None = None,
                 requests_per_s: float | None = None, sleep=None):
        self.base_url = base_url.rstrip("/")
        self._api_key = os.environ.get(api_key_env) or None
        rate = requests_per_s or (10.0 if self._api_key else 3.0)
        kwargs = {"sleep": sleep} if sleep is not None else {}
        self.http = HttpClient(requests_per_s=rate, retry=retry, secrets=[self._api_key or ""], **kwargs)
        self.common = {"db": "pubmed", "tool": tool, **({"email": email} if email else {})}

    def _params(self, **extra) -> dict:
        params = {**self.common, **extra}
        if self._api_key:
            params["api_key"] = self._api_key
        return params

    def esearch(self, query: str, mindate: dt.date | None = None, maxdate: dt.date | None = None) -> SearchResult:
        extra = {"term": query, "usehistory": "y", "retmode": "json", "retmax": 0}
        if mindate or maxdate:
            extra.update(datetype="pdat", mindate=_date(mindate or dt.date(1800, 1, 1)),
                         maxdate=_date(maxdate or dt.date.today()))
        result = self.http.get(f"{self.base_url}/esearch.fcgi", self._params(**extra), _json)
        if "ERROR" in result:
            raise ServiceError(f"esearch refused the query: {result['ERROR']}")
        return SearchResult(int(result.get("count", 0)), result.get("webenv", ""), str(result.get("querykey", "")),
                            result.get("querytranslation", ""))

    def efetch(self, search: SearchResult, batch: int = MAX_BATCH) -> Iterator:
        """The ``<PubmedArticle>`` elements of a history-server search, ``batch`` per request."""
        batch = min(batch, MAX_BATCH)
        for start in range(0, min(search.count, MAX_RECORDS + 1), batch):
            root = self.http.get(f"{self.base_url}/efetch.fcgi", self._params(
                WebEnv=search.webenv, query_key=search.query_key, retstart=start, retmax=batch, retmode="xml"), _xml)
            yield from root.findall("PubmedArticle")

    def _slices(self, query: str, start: dt.date, end: dt.date, out: list) -> None:
        found = self.esearch(query, start, end)
        if found.count <= MAX_RECORDS or start >= end:
            out.append((start, end, found))
            return
        middle = start + (end - start) // 2
        self._slices(query, start, middle, out)
        self._slices(query, middle + dt.timedelta(days=1), end, out)

    def fetch(self, query: str, mindate: dt.date | None = None, maxdate: dt.date | None = None,
              batch: int = MAX_BATCH, limit: int | None = None) -> FetchedRecords:
        """Every record of a search (the first ``limit``), sliced by publication date when it
        matches over 10,000."""
        whole = self.esearch(query, mindate, maxdate)
        if whole.count <= MAX_RECORDS:
            parts = [(mindate, maxdate, whole)]
        else:
            parts = []
            self._slices(query, mindate or dt.date(1800, 1, 1), maxdate or dt.date.today(), parts)
        out = FetchedRecords([], [])
        seen: set[str] = set()
        for lo, hi, search in parts:
            out.slices.append((_date(lo) if lo else "", _date(hi) if hi else "", search.count))
            out.beyond_cap += max(0, search.count - MAX_RECORDS)
            source = f"efetch {self.base_url} query_key={search.query_key}"  # in place of a file name
            for i, article in enumerate(self.efetch(search, batch), 1):
                try:
                    row = R.pubmed_article_row(article, source)
                except R.RecordError as err:
                    out.quarantined.append(R.Quarantined(source, str(i), err.reason, err.detail))
                    continue
                if row["pmid"] in seen:
                    continue
                seen.add(row["pmid"])
                out.pmids.append(row["pmid"])
                out.rows.append(row)
                if limit is not None and len(out.rows) >= limit:
                    return out
        return out
