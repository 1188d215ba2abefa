"""Instruction examples for the six LEADS tasks, built from reviews, publications and registry records.

One function per task turns plain dicts (rows of the curation job's joined tables) into an
``(instruction, response)`` pair: the instruction is the whole user turn, the response is the
exact text the model should learn to write (compact JSON, keys in a fixed order so equal
content gives equal bytes and exact-duplicate removal works). The curation job
(:mod:`medreason_dist.spark.curate`) calls these inside Spark workers; the literature-model
evaluation (:mod:`medreason_dist.stages.leads_model_eval`) scores answers with :func:`score`.

Where the targets come from (LEADS, arXiv 2501.16255, builds its instruction data the same way):

- search: the review's PICO -> a PubMed query and a ClinicalTrials.gov search made of the
  review's own PICO term lists; the review's included studies are the targets a query is judged by.
- screening: the review's PICO and criteria + one publication -> include/exclude. Included
  studies are positives (every inclusion criterion met, no exclusion criterion applies: the
  reviewers' decision says so); negatives are publications of the same topic the review did
  not include, whose per-criterion labels are unknown and are therefore not given.
- characteristics, participants, arms, results: a publication that reports a registered trial ->
  what the registry record says (protocol section: design, conditions, interventions,
  enrolment; results section: baseline characteristics, arm groups, outcome measures).

Everything here is plain Python: no Spark, no model.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, RootModel

from medreason_dist.literature.ctgov import ARM_TYPES, study_rows
from medreason_dist.literature.query import check_query

TASKS = ("search", "screening", "characteristics", "participants", "arms", "results")
EXTRACTION_TASKS = TASKS[2:]

# Rules: which construction made a row (every row records one).
RULE_SEARCH = "search.pico_terms"
RULE_SCREEN_INCLUDED = "screening.included_study"
RULE_SCREEN_NEGATIVE = "screening.same_topic_not_included"
RULE_EXTRACTION = {t: f"{t}.registry_record" for t in EXTRACTION_TASKS}

_SYSTEM_HINT = "Answer with JSON only."
_MAX_ITEMS = 24  # list entries kept in an extraction target (registry records can list hundreds)


def norm_title(text: str | None) -> str:
    """Lower case, runs of anything but letters and digits as one space: how titles are matched
    (decontamination keys on both sides: the evaluation reviews and the corpus rows)."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", (text or "").lower()).split())


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _pico_lines(pico: Mapping[str, Any] | None) -> str:
    pico = pico or {}
    names = (("P", "Population"), ("I", "Intervention"), ("C", "Comparison"), ("O", "Outcome"))
    return "\n".join(f"{label}: {pico.get(key)}" for key, label in names if pico.get(key))


def review_text(review: Mapping[str, Any]) -> str:
    """What a review asks (title and PICO), without any task wording: the text duplicates are judged on."""
    return f"{review.get('title')}\n{_pico_lines(review.get('pico'))}"


# -- search ------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\"()\[\]*:]")


def _clean_term(term: str) -> str:
    return " ".join(_UNSAFE.sub(" ", term or "").split())


def _or_group(terms: Iterable[str], tag: str) -> str | None:
    seen: list[str] = []
    for term in terms or ():
        t = _clean_term(term)
        if len(t) >= 2 and t.lower() not in {s.lower() for s in seen}:
            seen.append(t)
    if not seen:
        return None
    parts = [(f'"{t}"' if " " in t else t) + tag for t in seen[:8]]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def search_target(pico_terms: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """PubMed query (P AND I [AND C]) and CT.gov search from the term lists; None without P or I terms."""
    pico_terms = pico_terms or {}
    population = _or_group(pico_terms.get("P") or (), "[tiab]")
    intervention = _or_group(pico_terms.get("I") or (), "[tiab]")
    if population is None or intervention is None:
        return None
    groups = [population, intervention]
    comparison = _or_group(pico_terms.get("C") or (), "[tiab]")
    if comparison is not None and comparison.lower() not in ("placebo[tiab]",):
        groups.append(comparison)
    return {"pubmed": " AND ".join(groups),
            "ctgov": {"cond": _or_group(pico_terms.get("P") or (), "") or "",
                      "intr": _or_group(pico_terms.get("I") or (), "") or "", "term": ""}}


def search_example(review: Mapping[str, Any]) -> tuple[str, str]:
    """(instruction, response) of the search task; ValueError (the reason) when the terms give no query."""
    target = search_target(review.get("pico_terms"))
    if target is None:
        raise ValueError("pico_terms_missing")
    why = check_query(target["pubmed"], "pubmed")
    for key in ("cond", "intr"):
        why = why or (check_query(target["ctgov"][key], "ctgov") if target["ctgov"][key] else None)
    if why is not None:
        raise ValueError("query_grammar")
    instruction = (
        f"Systematic review: {review.get('title')}\n{_pico_lines(review.get('pico'))}\n\n"
        "Write the searches for this review: a PubMed boolean query (synonyms joined by OR in parentheses, "
        "PICO elements joined by AND, terms tagged [tiab] or [mh]) and a ClinicalTrials.gov search split into "
        'cond, intr and term. ' + _SYSTEM_HINT + ' Format: {"pubmed": "...", "ctgov": {"cond": "...", '
        '"intr": "...", "term": "..."}}'
    )
    return instruction, _dumps(target)


# -- screening ---------------------------------------------------------------------------------


def criteria_ids(criteria: Iterable[Mapping[str, Any]] | None) -> list[tuple[str, str, str]]:
    """(id, kind, text) with I1.. for inclusion and E1.. for exclusion criteria, in order."""
    out, counts = [], {"inclusion": 0, "exclusion": 0}
    for c in criteria or ():
        kind = "exclusion" if (c.get("kind") or "").lower().startswith("ex") else "inclusion"
        counts[kind] += 1
        out.append((f"{kind[0].upper()}{counts[kind]}", kind, c.get("text") or ""))
    return out


def _publication_text(pub: Mapping[str, Any], max_chars: int, *, full_text: bool) -> str:
    body = pub.get("full_text") if full_text and pub.get("full_text") else pub.get("abstract")
    body = body or ""
    if len(body) > max_chars:
        body = body[:max_chars].rsplit(" ", 1)[0] + " [...]"
    label = "Full text" if full_text and pub.get("full_text") else "Abstract"
    return f"Title: {pub.get('title') or '(none)'}\n{label}: {body}"


def screening_example(review: Mapping[str, Any], pub: Mapping[str, Any], included: bool, *,
                      max_chars: int = 3000) -> tuple[str, str]:
    crit = criteria_ids(review.get("criteria"))
    listed = "\n".join(f"{cid} ({kind}): {text}" for cid, kind, text in crit)
    instruction = (
        f"Systematic review: {review.get('title')}\n{_pico_lines(review.get('pico'))}\n\nCriteria:\n{listed}\n\n"
        f"{_publication_text(pub, max_chars, full_text=False)}\n\n"
        "Decide whether the review should include this study. Label the criteria you can judge "
        "(YES, PARTIAL, NO or UNCERTAIN; for an exclusion criterion YES means it applies). "
        + _SYSTEM_HINT + ' Format: {"decision": "include" or "exclude", "criteria": {"I1": "YES", ...}}'
    )
    if included:
        labels = {cid: ("NO" if kind == "exclusion" else "YES") for cid, kind, _ in crit}
        response = {"decision": "include", "criteria": labels}
    else:
        response = {"decision": "exclude", "criteria": {}}
    return instruction, _dumps(response)


# -- extraction (four tasks from one registry record) ------------------------------------------

_EXTRACTION_ASK = {
    "characteristics": ("the study characteristics", '{"study_type": ..., "phases": [...], "conditions": [...], '
                        '"interventions": [...], "enrollment": number, "status": ...}'),
    "participants": ("the baseline participant statistics, per arm",
                     '[{"measure": ..., "param_type": ..., "unit": ..., "group": ..., "value": ...}, ...]'),
    "arms": ("the arm design", '[{"label": ..., "type": ..., "interventions": [...]}, ...]'),
    "results": ("the trial results, per outcome and arm",
                '[{"outcome": ..., "param_type": ..., "unit": ..., "time_frame": ..., "group": ..., "value": ...}, ...]'),
}


def _registry_study(protocol_json: str | None, results_json: str | None, has_results: bool | None) -> dict:
    try:
        protocol = json.loads(protocol_json) if protocol_json else None
        results = json.loads(results_json) if results_json else {}
    except (TypeError, ValueError) as err:
        raise ValueError("registry_json_invalid") from err
    if not isinstance(protocol, dict):
        raise ValueError("registry_without_protocol")
    return {"protocolSection": protocol, "resultsSection": results or {}, "hasResults": bool(has_results)}


def _value(m: Mapping[str, Any]) -> Any:
    number = m.get("value_number")
    if number is None:
        return m.get("value")
    return int(number) if float(number).is_integer() else number


def extraction_targets(protocol_json: str | None, results_json: str | None,
                       has_results: bool | None) -> dict[str, Any]:
    """Registry record -> {task: target}; tasks the record cannot support are absent.

    ValueError with a reason for an unreadable record (bad JSON, no protocol section, no NCT id).
    """
    try:
        rows = study_rows(_registry_study(protocol_json, results_json, has_results))
    except ValueError as err:
        reason = str(err)
        raise ValueError(reason if reason.startswith("registry_") else "registry_incomplete") from err
    study = rows.studies[0]
    targets: dict[str, Any] = {"characteristics": {
        "study_type": study["study_type"], "phases": study["phases"], "conditions": study["conditions"],
        "interventions": study["interventions"], "enrollment": study["enrollment"], "status": study["overall_status"]}}
    arms = [{"label": a["label"], "type": a["type"], "interventions": a["intervention_names"]} for a in rows.arms]
    if arms:
        targets["arms"] = arms[:_MAX_ITEMS]
    baseline = [{"measure": m["measure"], "param_type": m["param_type"], "unit": m["unit"],
                 "group": m["group_title"], "value": _value(m)}
                for m in rows.measurements if m["section"] == "baseline"]
    if baseline:
        targets["participants"] = baseline[:_MAX_ITEMS]
    outcomes = [{"outcome": m["measure"], "param_type": m["param_type"], "unit": m["unit"],
                 "time_frame": m["time_frame"], "group": m["group_title"], "value": _value(m)}
                for m in rows.measurements if m["section"] == "outcome"]
    if outcomes:
        targets["results"] = outcomes[:_MAX_ITEMS]
    return targets


def extraction_instruction(task: str, pub: Mapping[str, Any], *, max_chars: int = 6000) -> str:
    what, fmt = _EXTRACTION_ASK[task]
    return (f"{_publication_text(pub, max_chars, full_text=True)}\n\n"
            f"Extract {what} of the trial this publication reports. {_SYSTEM_HINT} Format: {fmt}")


def extraction_examples(pub: Mapping[str, Any], protocol_json: str | None, results_json: str | None,
                        has_results: bool | None, *, max_chars: int = 6000) -> dict[str, tuple[str, str]]:
    targets = extraction_targets(protocol_json, results_json, has_results)
    return {task: (extraction_instruction(task, pub, max_chars=max_chars), _dumps(target))
            for task, target in targets.items()}


# -- answer schemas: what schema-constrained decoding holds an answer to (evaluation) ------------

Label = Literal["YES", "PARTIAL", "NO", "UNCERTAIN"]
Number = float | str | None


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CtGovSearch(_Answer):
    cond: str
    intr: str = ""
    term: str = ""


class SearchAnswer(_Answer):
    pubmed: str
    ctgov: CtGovSearch


class ScreeningAnswer(_Answer):
    decision: Literal["include", "exclude"]
    criteria: dict[str, Label] = {}


class CharacteristicsAnswer(_Answer):
    study_type: str | None
    phases: list[str]
    conditions: list[str]
    interventions: list[str]
    enrollment: int | None
    status: str | None


class Arm(_Answer):
    label: str
    type: Literal[ARM_TYPES]  # type: ignore[valid-type]
    interventions: list[str]


class Statistic(_Answer):
    measure: str
    param_type: str | None
    unit: str | None
    group: str | None
    value: Number


class Result(_Answer):
    outcome: str
    param_type: str | None
    unit: str | None
    time_frame: str | None
    group: str | None
    value: Number


ANSWER_MODELS: dict[str, type[BaseModel]] = {
    "search": SearchAnswer, "screening": ScreeningAnswer, "characteristics": CharacteristicsAnswer,
    "arms": RootModel[list[Arm]], "participants": RootModel[list[Statistic]], "results": RootModel[list[Result]],
}


# -- scoring a model's answer against the target (the literature-model evaluation) --------------


def _json(text: str) -> Any:
    text = (text or "").strip()
    start = min([i for i in (text.find("{"), text.find("[")) if i >= 0], default=-1)
    if start < 0:
        raise ValueError("no JSON")
    decoder = json.JSONDecoder()
    value, _ = decoder.raw_decode(text[start:])
    return value


def _norm(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).lower().split())


def _item_keys(items: Any, fields: tuple[str, ...]) -> set[tuple[str, ...]]:
    if not isinstance(items, list):
        return set()
    return {tuple(_norm(i.get(f)) for f in fields) for i in items if isinstance(i, dict)}


_ITEM_FIELDS = {"participants": ("measure", "group", "value"), "arms": ("label", "type"),
                "results": ("outcome", "group", "value")}
_CHAR_FIELDS = ("study_type", "phases", "conditions", "interventions", "enrollment", "status")


def score(task: str, answer: str, target: str) -> dict[str, Any]:
    """How well ``answer`` matches ``target`` for one example.

    Returns ``parsed`` (the answer is JSON of the right shape), ``hits`` and ``total`` (items of
    the target matched: characteristics fields, arm/statistic/result entries), ``correct`` (the
    screening decision, or the search query parsing and naming every target PICO group), and
    ``predicted`` (screening: include or exclude).
    """
    gold = json.loads(target)
    out: dict[str, Any] = {"parsed": False, "hits": 0, "total": 0, "correct": False, "predicted": None}
    try:
        got = _json(answer)
    except ValueError:
        got = None
    if task == "screening":
        out["total"] = 1
        if isinstance(got, dict) and got.get("decision") in ("include", "exclude"):
            out.update(parsed=True, predicted=got["decision"])
            out["correct"] = got["decision"] == gold["decision"]
            out["hits"] = int(out["correct"])
        return out
    if task == "search":
        groups = [g for g in gold["pubmed"].split(" AND ")]
        out["total"] = len(groups)
        if isinstance(got, dict) and isinstance(got.get("pubmed"), str):
            parses = check_query(got["pubmed"], "pubmed") is None
            out["parsed"] = parses
            text = got["pubmed"].lower()
            # a PICO group counts when the query names at least one of its terms
            for g in groups:
                terms = [t.split("[")[0].strip('"() ').lower() for t in g.strip("()").split(" OR ")]
                out["hits"] += int(any(t and t in text for t in terms))
            out["correct"] = parses and out["hits"] == out["total"]
        return out
    if task == "characteristics":
        out["total"] = len(_CHAR_FIELDS)
        if isinstance(got, dict):
            out["parsed"] = True
            for f in _CHAR_FIELDS:
                g, p = gold.get(f), got.get(f)
                if isinstance(g, list):
                    out["hits"] += int(isinstance(p, list) and {_norm(x) for x in g} == {_norm(x) for x in p})
                else:
                    out["hits"] += int(_norm(g) == _norm(p))
        out["correct"] = out["hits"] == out["total"]
        return out
    fields = _ITEM_FIELDS[task]
    gold_keys = _item_keys(gold, fields)
    out["total"] = len(gold_keys)
    if isinstance(got, list):
        out["parsed"] = True
        out["hits"] = len(gold_keys & _item_keys(got, fields))
    out["correct"] = out["total"] > 0 and out["hits"] == out["total"]
    return out
