"""Prompts and answer models of the literature tasks (search, screen, extract).

Each builder turns one row into chat messages for the engine layer (``run_llm(build_prompt=...)``);
each answer model is the JSON schema generation is constrained to. The texts are ours.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from medreason_dist.literature.protocol import Protocol
from medreason_dist.literature.query import check_query

SYSTEM = ("You assist with systematic reviews of clinical evidence. Answer only from the text you are "
          "given, and reply with JSON that follows the requested format exactly.")


def _pico(protocol: Protocol) -> str:
    p = protocol.pico
    lines = [f"Population: {p.population}", f"Intervention: {p.intervention}"]
    if p.comparison:
        lines.append(f"Comparison: {p.comparison}")
    lines.append(f"Outcome: {p.outcome}")
    return "\n".join(lines)


# -- search ------------------------------------------------------------------------------------


class CtGovQuery(BaseModel):
    cond: str = Field(min_length=1, description="query.cond: the condition or disease")
    intr: str = Field("", description="query.intr: the intervention, may be empty")
    term: str = Field("", description="query.term: other terms, may be empty")


class SearchQueries(BaseModel):
    pubmed: str = Field(min_length=1, description="A PubMed boolean query with field tags")
    ctgov: CtGovQuery


def search_prompt(protocol: Protocol) -> list[dict[str, str]]:
    user = (
        f"Review title: {protocol.title}\n{_pico(protocol)}\n\n"
        "Write two searches that would find the studies this review needs.\n"
        "1. pubmed: one PubMed query. Combine synonyms of each PICO element with OR inside parentheses and "
        "join the elements with AND; tag terms with [tiab] or [mh] (MeSH); quote phrases; use AND, OR, NOT "
        "in capitals; a * may end a word stem of four or more letters.\n"
        "2. ctgov: the same search for ClinicalTrials.gov, split into cond (condition), intr (intervention) "
        "and term (anything else, may be empty), using AND/OR/NOT, quotes and parentheses, no field tags.\n"
        'Reply as {"pubmed": "...", "ctgov": {"cond": "...", "intr": "...", "term": "..."}}.'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def check_search(answer: SearchQueries) -> str | None:
    """Why the generated queries cannot be run (each checked by its grammar), or None."""
    problems = []
    if (why := check_query(answer.pubmed, "pubmed")) is not None:
        problems.append(f"pubmed: {why}")
    for key in ("cond", "intr", "term"):
        value = getattr(answer.ctgov, key)
        if value and (why := check_query(value, "ctgov")) is not None:
            problems.append(f"ctgov.{key}: {why}")
    return "; ".join(problems) or None


# -- screening --------------------------------------------------------------------------------


def _record_text(row: dict[str, Any], max_chars: int) -> str:
    parts = [f"Title: {row.get('title') or '(none)'}"]
    if row.get("abstract"):
        abstract = row["abstract"]
        parts.append("Abstract: " + (abstract if len(abstract) <= max_chars else abstract[:max_chars] + " [...]"))
    if row.get("publication_types"):
        parts.append("Publication types: " + ", ".join(row["publication_types"]))
    if row.get("mesh_terms"):
        parts.append("MeSH: " + ", ".join(row["mesh_terms"]))
    return "\n".join(parts)


def screen_prompt(protocol: Protocol, row: dict[str, Any], *, full_text: str | None = None,
                  max_chars: int = 6000) -> list[dict[str, str]]:
    """Labels for every criterion of ``protocol`` on one record (title/abstract, or full text)."""
    criteria = "\n".join(f"{c.id} ({c.kind}): {c.text}" for c in protocol.criteria())
    source = _record_text(row, max_chars) if full_text is None else \
        f"Full text:\n{full_text if len(full_text) <= max_chars else full_text[:max_chars] + ' [...]'}"
    user = (
        f"Review: {protocol.title}\n{_pico(protocol)}\n\nCriteria:\n{criteria}\n\n{source}\n\n"
        "For every criterion, say whether this study meets it: YES, PARTIAL (meets part of it), NO, or "
        "UNCERTAIN (the text does not say). For an exclusion criterion, YES means the exclusion applies. "
        "Give a one-sentence rationale taken from the text.\n"
        'Reply as {"I1": {"label": "YES", "rationale": "..."}, ...} with one entry per criterion id, in the '
        "order listed."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


# -- extraction -------------------------------------------------------------------------------


def extract_prompt(protocol: Protocol, text: str, *, chunk: int = 1, chunks: int = 1) -> list[dict[str, str]]:
    fields = "\n".join(f"- {f.name} ({f.type}{', ' + f.unit if f.unit else ''}"
                       f"{': one of ' + ', '.join(f.categories) if f.categories else ''}): {f.description}"
                       for f in protocol.fields)
    part = f" (part {chunk} of {chunks}; report only what this part says)" if chunks > 1 else ""
    user = (
        f"Review: {protocol.title}\n\nStudy text{part}:\n{text}\n\n"
        f"Extract from the study text:\n1. characteristics:\n{fields}\n"
        "   For each, give reported (true/false), value and evidence: the exact words of the text that "
        "support it. If the text does not report it, set reported to false and value to null.\n"
        "2. arms: each arm group with label, type (EXPERIMENTAL, ACTIVE_COMPARATOR, PLACEBO_COMPARATOR, "
        "SHAM_COMPARATOR, NO_INTERVENTION or OTHER), description and intervention names.\n"
        "3. participants: baseline statistics per arm (measure, param_type such as MEAN or "
        "COUNT_OF_PARTICIPANTS, unit, group = the arm label, value).\n"
        "4. results: per outcome and arm (outcome, param_type, unit, time_frame, group, value).\n"
        "Every value needs its evidence span copied from the text. Numbers as numbers, not words."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
