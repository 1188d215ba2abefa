"""A loopback stand-in for the ClinicalTrials.gov API v2 (``/api/v2/studies`` with paging and
``/api/v2/studies/{nctId}``), answering in its JSON format. ``query.cond`` matches a study whose
conditions contain the text (case-insensitive); ``faults`` as in fake_eutils (429, 500,
truncate)."""

from __future__ import annotations

import base64
import json
import threading

from loopback import LoopbackServer


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
