"""ClinicalTrials.gov API v2: search ``/api/v2/studies`` to the last page, fetch
``/api/v2/studies/{nctId}``, and map a study's protocol and results modules to typed rows.

- Searches take ``query.cond`` / ``query.intr`` / ``query.term`` (checked by the
  ClinicalTrials.gov grammar in :mod:`medreason_dist.literature.query` first) and any
  ``filter.*`` / ``postFilter.*`` parameters; pages of ``pageSize`` <= 1000 studies are followed
  through ``nextPageToken`` until there is none.
- Requests are spaced (default 5/s; the service asks for about 50 per minute per IP at most
  for sustained use, so long harvests should lower it) and retried on 429/5xx/cut bodies.
- Rows: one per study (:data:`STUDY_SCHEMA`), per arm group (:data:`ARM_SCHEMA`), per baseline
  measurement and per outcome measurement (:data:`MEASUREMENT_SCHEMA`: measure title,
  ``paramType``, ``unitOfMeasure``, ``timeFrame``, group, class/category, value and spread).
  Values stay text as the registry gives them ("NA", "12.5"); ``value_number`` holds the float
  when there is one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import pyarrow as pa

from medreason_dist.literature.http import HttpClient, RetryPolicy, ServiceError
from medreason_dist.literature.query import QueryError, parse_query
from medreason_dist.literature.records import parse_number

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
MAX_PAGE_SIZE = 1000
ARM_TYPES = ("EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION", "OTHER")

_S = pa.string()
STUDY_SCHEMA = pa.schema([
    ("nct_id", _S), ("brief_title", _S), ("official_title", _S), ("overall_status", _S), ("study_type", _S),
    ("phases", pa.list_(_S)), ("start_date", _S), ("completion_date", _S), ("enrollment", pa.int64()),
    ("conditions", pa.list_(_S)), ("interventions", pa.list_(_S)), ("brief_summary", _S),
    ("eligibility_criteria", _S), ("has_results", pa.bool_()),
])
ARM_SCHEMA = pa.schema([("nct_id", _S), ("label", _S), ("type", _S), ("description", _S),
                        ("intervention_names", pa.list_(_S))])
MEASUREMENT_SCHEMA = pa.schema([
    ("nct_id", _S), ("section", _S),  # baseline | outcome
    ("outcome_type", _S),  # PRIMARY / SECONDARY / OTHER_PRE_SPECIFIED for outcomes
    ("measure", _S), ("param_type", _S), ("dispersion_type", _S), ("unit", _S), ("time_frame", _S),
    ("group_id", _S), ("group_title", _S), ("class_title", _S), ("category_title", _S),
    ("value", _S), ("value_number", pa.float64()), ("spread", _S), ("lower_limit", _S), ("upper_limit", _S),
])


def _measurements(nct: str, section: str, measure: dict, groups: dict[str, str]) -> Iterator[dict]:
    for klass in measure.get("classes") or []:
        for category in klass.get("categories") or []:
            for m in category.get("measurements") or []:
                yield {
                    "nct_id": nct, "section": section, "outcome_type": measure.get("type"),
                    "measure": measure.get("title"), "param_type": measure.get("paramType"),
                    "dispersion_type": measure.get("dispersionType"), "unit": measure.get("unitOfMeasure"),
                    "time_frame": measure.get("timeFrame"), "group_id": m.get("groupId"),
                    "group_title": groups.get(m.get("groupId", ""), None), "class_title": klass.get("title"),
                    "category_title": category.get("title"), "value": m.get("value"),
                    "value_number": parse_number(m.get("value")), "spread": m.get("spread"),
                    "lower_limit": m.get("lowerLimit"), "upper_limit": m.get("upperLimit"),
                }


@dataclass
class StudyRows:
    studies: list[dict] = field(default_factory=list)
    arms: list[dict] = field(default_factory=list)
    measurements: list[dict] = field(default_factory=list)

    def tables(self) -> dict[str, pa.Table]:
        return {"studies": pa.Table.from_pylist(self.studies, schema=STUDY_SCHEMA),
                "arms": pa.Table.from_pylist(self.arms, schema=ARM_SCHEMA),
                "measurements": pa.Table.from_pylist(self.measurements, schema=MEASUREMENT_SCHEMA)}


def study_rows(study: dict, out: StudyRows | None = None) -> StudyRows:
    """Typed rows of one API v2 study; ``ValueError`` naming what is missing for a malformed one."""
    out = out if out is not None else StudyRows()
    protocol = study.get("protocolSection") if isinstance(study, dict) else None
    if not isinstance(protocol, dict):
        raise ValueError("study without protocolSection")
    ident = protocol.get("identificationModule") or {}
    nct = ident.get("nctId")
    if not nct:
        raise ValueError("study without identificationModule.nctId")
    status = protocol.get("statusModule") or {}
    design = protocol.get("designModule") or {}
    arms_mod = protocol.get("armsInterventionsModule") or {}
    enrollment = (design.get("enrollmentInfo") or {}).get("count")
    out.studies.append({
        "nct_id": nct, "brief_title": ident.get("briefTitle"), "official_title": ident.get("officialTitle"),
        "overall_status": status.get("overallStatus"), "study_type": design.get("studyType"),
        "phases": list(design.get("phases") or []), "start_date": (status.get("startDateStruct") or {}).get("date"),
        "completion_date": (status.get("completionDateStruct") or {}).get("date"),
        "enrollment": int(enrollment) if isinstance(enrollment, (int, float)) else None,
        "conditions": list((protocol.get("conditionsModule") or {}).get("conditions") or []),
        "interventions": [i.get("name") for i in arms_mod.get("interventions") or [] if i.get("name")],
        "brief_summary": (protocol.get("descriptionModule") or {}).get("briefSummary"),
        "eligibility_criteria": (protocol.get("eligibilityModule") or {}).get("eligibilityCriteria"),
        "has_results": bool(study.get("hasResults") or study.get("resultsSection")),
    })
    for arm in arms_mod.get("armGroups") or []:
        out.arms.append({"nct_id": nct, "label": arm.get("label"), "type": arm.get("type"),
                         "description": arm.get("description"),
                         "intervention_names": list(arm.get("interventionNames") or [])})
    results = study.get("resultsSection") or {}
    baseline = results.get("baselineCharacteristicsModule") or {}
    groups = {g.get("id"): g.get("title") for g in baseline.get("groups") or []}
    for measure in baseline.get("measures") or []:
        out.measurements.extend(_measurements(nct, "baseline", measure, groups))
    for measure in (results.get("outcomeMeasuresModule") or {}).get("outcomeMeasures") or []:
        out_groups = {g.get("id"): g.get("title") for g in measure.get("groups") or []}
        out.measurements.extend(_measurements(nct, "outcome", measure, out_groups))
    return out


def _page(body: bytes) -> dict:
    data = json.loads(body)  # a cut-off body raises ValueError and is retried
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


@dataclass
class SearchPage:
    studies: list[dict]
    next_token: str | None
    total: int | None


class CtGovClient:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, requests_per_s: float = 5.0,
                 retry: RetryPolicy | None = None, sleep=None):
        self.base_url = base_url.rstrip("/")
        kwargs = {"sleep": sleep} if sleep is not None else {}
        self.http = HttpClient(requests_per_s=requests_per_s, retry=retry, **kwargs)

    def search_pages(self, *, cond: str | None = None, intr: str | None = None, term: str | None = None,
                     filters: dict[str, str] | None = None, page_size: int = MAX_PAGE_SIZE) -> Iterator[SearchPage]:
        params: dict[str, Any] = {"format": "json", "pageSize": min(max(page_size, 1), MAX_PAGE_SIZE),
                                  "countTotal": "true"}
        for key, value in (("query.cond", cond), ("query.intr", intr), ("query.term", term)):
            if value:
                try:
                    parse_query(value, "ctgov")
                except QueryError as err:
                    raise ServiceError(f"{key} is not a valid ClinicalTrials.gov query: {err}") from err
                params[key] = value
        for key, value in (filters or {}).items():
            if not key.startswith(("filter.", "postFilter.", "query.")):
                raise ServiceError(f"unknown search parameter {key!r}: use query.*, filter.* or postFilter.*")
            params[key] = value
        token = None
        while True:
            data = self.http.get(f"{self.base_url}/studies", {**params, **({"pageToken": token} if token else {})},
                                 _page)
            token = data.get("nextPageToken")
            yield SearchPage(list(data.get("studies") or []), token, data.get("totalCount"))
            if not token:
                return

    def search(self, *, limit: int | None = None, **kwargs) -> tuple[StudyRows, list[tuple[int, str]]]:
        """Rows of every study of a search (the first ``limit``); malformed studies come back as
        (position, reason)."""
        rows, bad, position = StudyRows(), [], 0
        if limit is not None:
            kwargs.setdefault("page_size", min(limit, MAX_PAGE_SIZE))
        for page in self.search_pages(**kwargs):
            for study in page.studies:
                if limit is not None and position >= limit:
                    return rows, bad
                position += 1
                try:
                    study_rows(study, rows)
                except ValueError as err:
                    bad.append((position, str(err)))
        return rows, bad

    def study(self, nct_id: str) -> dict:
        if not nct_id or not nct_id.upper().startswith("NCT"):
            raise ServiceError(f"{nct_id!r} is not an NCT id")
        return self.http.get(f"{self.base_url}/studies/{nct_id.upper()}", {"format": "json"}, _page)
