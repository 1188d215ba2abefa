"""A loopback stand-in for NCBI E-utilities (esearch with the history server, efetch) that
answers in the real formats: esearch JSON, efetch PubmedArticleSet XML.

The corpus is a list of (pmid, date, title, abstract); a search term is matched by the local
boolean search of medreason_dist.literature.query (``all`` matches everything), and
``mindate``/``maxdate`` filter on the date. Like PubMed, efetch returns nothing past the first
``cap`` records of a search. ``faults`` is a queue of answers to give instead of the next
replies: ``429``, ``500``, ``truncate`` (a body cut in the middle), ``drop`` (close the
connection without a reply).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from xml.sax.saxutils import escape

from loopback import LoopbackServer


def article_xml(pmid: str, date: dt.date, title: str, abstract: str) -> str:
    return (f"<PubmedArticle><MedlineCitation Status=\"MEDLINE\"><PMID Version=\"1\">{pmid}</PMID>"
            f"<Article><Journal><JournalIssue><PubDate><Year>{date.year}</Year><Month>{date.month:02d}</Month>"
            f"<Day>{date.day:02d}</Day></PubDate></JournalIssue><Title>Test Journal</Title></Journal>"
            f"<ArticleTitle>{escape(title)}</ArticleTitle><Abstract><AbstractText>{escape(abstract)}</AbstractText>"
            f"</Abstract></Article></MedlineCitation><PubmedData><ArticleIdList>"
            f"<ArticleId IdType=\"pubmed\">{pmid}</ArticleId></ArticleIdList></PubmedData></PubmedArticle>")


class FakeEutils:
    def __init__(self, corpus: list[tuple[str, dt.date, str, str]], *, cap: int = 9999):
        self.corpus, self.cap = corpus, cap
        self.faults: list[str] = []
        self.requests: list[tuple[float, str, dict]] = []  # (time, path, params)
        self.histories: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    # -- behaviour
    def _search(self, params: dict) -> list[int]:
        from medreason_dist.literature.query import parse_query, matches

        term = params.get("term", "")
        tree = None if term.strip().lower() == "all" else parse_query(term)
        lo = dt.datetime.strptime(params["mindate"], "%Y/%m/%d").date() if "mindate" in params else dt.date.min
        hi = dt.datetime.strptime(params["maxdate"], "%Y/%m/%d").date() if "maxdate" in params else dt.date.max
        hits = []
        for i, (pmid, date, title, abstract) in enumerate(self.corpus):
            record = {"title": title, "abstract": abstract, "mesh_terms": [], "keywords": [], "publication_types": []}
            if lo <= date <= hi and (tree is None or matches(tree, record)):
                hits.append(i)
        return hits

    def handle(self, path: str, params: dict) -> tuple[int, str, bytes]:
        with self._lock:
            self.requests.append((time.monotonic(), path, params))
            fault = self.faults.pop(0) if self.faults else None
        if fault in ("429", "500"):
            return int(fault), "application/json", json.dumps({"error": "API rate limit exceeded"}).encode()
        if path.endswith("/esearch.fcgi"):
            try:
                hits = self._search(params)
            except ValueError as err:
                body = {"esearchresult": {"ERROR": f"invalid query: {err}"}}
                return 200, "application/json", json.dumps(body).encode()
            with self._lock:
                key = str(len(self.histories) + 1)
                self.histories[key] = hits
            body = {"header": {"type": "esearch", "version": "0.3"}, "esearchresult": {
                "count": str(len(hits)), "retmax": "0", "retstart": "0", "querykey": key,
                "webenv": "MCID_fake", "idlist": [], "querytranslation": params.get("term", "")}}
            payload = json.dumps(body).encode()
            ctype = "application/json"
        elif path.endswith("/efetch.fcgi"):
            hits = self.histories.get(params.get("query_key", ""), [])[: self.cap]
            start, size = int(params.get("retstart", 0)), int(params.get("retmax", 20))
            articles = "".join(article_xml(*self.corpus[i]) for i in hits[start:start + size])
            payload = f'<?xml version="1.0" ?>\n<PubmedArticleSet>{articles}</PubmedArticleSet>\n'.encode()
            ctype = "text/xml"
        else:
            return 404, "text/plain", b"no such route"
        if fault == "truncate":
            payload = payload[: len(payload) // 2]
        return 200, ctype, payload

    # -- server plumbing
    def _reply(self, path: str, params: dict):
        with self._lock:
            if self.faults and self.faults[0] == "drop":
                self.faults.pop(0)
                return None
        return self.handle(path, params)

    def start(self) -> "FakeEutils":
        self._server = LoopbackServer(self._reply)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/entrez/eutils"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
