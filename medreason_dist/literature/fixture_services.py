"""Loopback fixture services: stand-ins for NCBI E-utilities and the ClinicalTrials.gov API v2
that answer on 127.0.0.1 in the real formats (esearch JSON, efetch PubmedArticleSet XML, API v2
study JSON), with injectable faults (429, 500, a truncated body, a dropped connection).

They serve the test suite, the benchmarks and the embedded default's ``leads search --execute``
(``leads.pubmed.base_url: fixture``), so nothing of this project needs the network to show its
clients working. Real runs point the base URLs at the services themselves.

E-utilities: A loopback stand-in for NCBI E-utilities (esearch with the history server, efetch) that
answers in the real formats: esearch JSON, efetch PubmedArticleSet XML.

The corpus is a list of (pmid, date, title, abstract); a search term is matched by the local
boolean search of medreason_dist.literature.query (``all`` matches everything), and
``mindate``/``maxdate`` filter on the date. Like PubMed, efetch returns nothing past the first
``cap`` records of a search. ``faults`` is a queue of answers to give instead of the next
replies: ``429``, ``500``, ``truncate`` (a body cut in the middle), ``drop`` (close the
connection without a reply).

ClinicalTrials.gov: A loopback stand-in for the ClinicalTrials.gov API v2 (``/api/v2/studies`` with paging and
``/api/v2/studies/{nctId}``), answering in its JSON format. ``query.cond`` matches a study whose
conditions contain the text (case-insensitive); ``faults`` as in fake_eutils (429, 500,
truncate).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

from medreason_dist.literature.query import matches, parse_query

Reply = tuple[int, str, bytes] | None


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1: ``handle(path, params)`` returns (status, content type,
    body), or None to close the connection without a reply."""

    def __init__(self, handle: Callable[[str, dict], Reply]):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                reply = handle(url.path, {k: v[-1] for k, v in parse_qs(url.query).items()})
                if reply is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                status, ctype, payload = reply
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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


def study(i: int, condition: str, *, with_results: bool = False) -> dict:
    nct = f"NCT{10000000 + i:08d}"
    s = {"protocolSection": {
        "identificationModule": {"nctId": nct, "briefTitle": f"Trial {i} in {condition}",
                                 "officialTitle": f"A Randomised Trial {i} in {condition}"},
        "statusModule": {"overallStatus": "COMPLETED", "startDateStruct": {"date": "2016-03"},
                         "completionDateStruct": {"date": "2018-09-30"}},
        "descriptionModule": {"briefSummary": f"Exercise for {condition}."},
        "conditionsModule": {"conditions": [condition]},
        "designModule": {"studyType": "INTERVENTIONAL", "phases": ["NA"], "enrollmentInfo": {"count": 80 + i}},
        "armsInterventionsModule": {
            "armGroups": [{"label": "Exercise", "type": "EXPERIMENTAL", "description": "12 weeks of exercise",
                           "interventionNames": ["Behavioral: Exercise"]},
                          {"label": "Usual care", "type": "NO_INTERVENTION"}],
            "interventions": [{"type": "BEHAVIORAL", "name": "Exercise"}]},
        "eligibilityModule": {"eligibilityCriteria": "Inclusion Criteria:\n* age 40 or over"}},
        "hasResults": with_results}
    if with_results:
        groups = [{"id": "BG000", "title": "Exercise"}, {"id": "BG001", "title": "Usual care"}]
        s["resultsSection"] = {
            "baselineCharacteristicsModule": {"groups": groups, "measures": [
                {"title": "Age, Continuous", "paramType": "MEAN", "dispersionType": "STANDARD_DEVIATION",
                 "unitOfMeasure": "years", "classes": [{"categories": [{"measurements": [
                     {"groupId": "BG000", "value": "61.2", "spread": "7.1"},
                     {"groupId": "BG001", "value": "60.4", "spread": "6.8"}]}]}]},
                {"title": "Sex: Female, Male", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
                 "classes": [{"categories": [{"title": "Female", "measurements": [
                     {"groupId": "BG000", "value": "25"}, {"groupId": "BG001", "value": "NA"}]}]}]}]},
            "outcomeMeasuresModule": {"outcomeMeasures": [
                {"type": "PRIMARY", "title": "WOMAC pain", "paramType": "MEAN", "unitOfMeasure": "score on a scale",
                 "timeFrame": "12 weeks", "groups": [{"id": "OG000", "title": "Exercise"},
                                                     {"id": "OG001", "title": "Usual care"}],
                 "classes": [{"categories": [{"measurements": [
                     {"groupId": "OG000", "value": "6.1", "lowerLimit": "5.2", "upperLimit": "7.0"},
                     {"groupId": "OG001", "value": "8.0"}]}]}]}]}}
    return s


class FakeCtGov:
    def __init__(self, studies: list[dict]):
        self.studies = studies
        self.faults: list[str] = []
        self.requests: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._server = None

    def handle(self, path: str, params: dict) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append((path, params))
            fault = self.faults.pop(0) if self.faults else None
        if fault in ("429", "500"):
            return int(fault), b'{"message": "slow down"}'
        if path == "/api/v2/studies":
            cond = params.get("query.cond", "").replace('"', "").lower()
            hits = [s for s in self.studies if cond in " ".join(
                s["protocolSection"]["conditionsModule"]["conditions"]).lower()]
            size = int(params.get("pageSize", 10))
            if size > 1000:
                return 400, b'{"message": "pageSize must be at most 1000"}'
            start = int(base64.b64decode(params["pageToken"]).decode()) if "pageToken" in params else 0
            body = {"studies": hits[start:start + size]}
            if start + size < len(hits):
                body["nextPageToken"] = base64.b64encode(str(start + size).encode()).decode()
            if params.get("countTotal") == "true" and "pageToken" not in params:
                body["totalCount"] = len(hits)
            payload = json.dumps(body).encode()
        elif path.startswith("/api/v2/studies/"):
            nct = path.rsplit("/", 1)[-1]
            found = [s for s in self.studies if s["protocolSection"]["identificationModule"].get("nctId") == nct]
            if not found:
                return 404, json.dumps({"message": f"{nct} not found"}).encode()
            payload = json.dumps(found[0]).encode()
        else:
            return 404, b"{}"
        if fault == "truncate":
            payload = payload[: len(payload) // 2]
        return 200, payload

    def start(self) -> "FakeCtGov":
        self._server = LoopbackServer(self._status)
        return self

    def _status(self, path: str, params: dict) -> tuple[int, str, bytes]:
        status, payload = self.handle(path, params)
        return status, "application/json", payload

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/api/v2"

    def stop(self) -> None:
        self._server.stop()
