"""Grounding evidence shared by the link stage, the report and ``medreason-dist ground``:
dictionary links of a QA row, gold links, and link precision/recall against them.

A link is a dict: role ("q" question, "a" answer), surface (the words as written), start/end (the
span in the role's text: the question stem or the answer text; None when the words were the
LLM's and are not in the text), node_id (kg.csv index), node_name, type, method (dictionary |
exact | embedding | llm | llm_none | no_candidate | llm_error:...), evidence (how the method
decided), score. ``name`` repeats surface for the stages that read it.
"""

from __future__ import annotations

import json
from collections import Counter

from medreason_dist.kg.textkeys import PHRASE_BREAK, fold, fold_key
from medreason_dist.kg.matcher import LexiconMatcher

ROLE_NAMES = {"q": "question", "a": "answer"}


def dictionary_links(matcher: LexiconMatcher, question: str, answer_text: str) -> tuple[list[dict], int]:
    """Lexicon hits in the question stem (role q) and the gold answer text (role a), and how many
    generic-only spans were passed over. Distractor options are not matched: their entities would
    pair with the answer and send the path search after wrong answers."""
    links, generic = [], 0
    for role, text in (("q", question), ("a", answer_text)):
        hits, skipped = matcher.find(text)
        generic += skipped
        for h in hits:
            evidence = f"lexicon {h.variant}" + (f"; {h.alternatives} other node(s) share the key" if h.alternatives
                                                 else "")
            links.append({"role": role, "name": h.surface, "surface": h.surface, "start": h.start, "end": h.end,
                          "node_id": h.node_id, "node_name": h.node_name, "type": h.type, "score": 1.0,
                          "method": "dictionary", "evidence": evidence})
    return links, generic


def locate(surface: str, text: str | None) -> tuple[int | None, int | None]:
    """Span of the LLM's words in the text, case-insensitively; (None, None) if they are not there."""
    if not text or not surface:
        return None, None
    at = text.lower().find(surface.lower())
    return (at, at + len(surface)) if at >= 0 else (None, None)


def in_text(name: str, text: str | None) -> bool:
    """Whether the text says ``name`` (folded, as whole words)."""
    key = fold_key(name)
    if not key or not text:
        return False
    folded = " " + fold(text)[0].replace(PHRASE_BREAK, " ") + " "
    return f" {key.replace(PHRASE_BREAK, ' ')} " in folded


def covered(entity_name: str, role: str, links: list[dict]) -> bool:
    """Whether an LLM-extracted name is already a dictionary link of the same role (hybrid skips it),
    or is an answer entity of a row whose answer the dictionary already linked."""
    if role == "a" and any(x["role"] == "a" for x in links):
        return True
    key = fold_key(entity_name)
    return any(x["role"] == role and fold_key(x["surface"]) == key for x in links)


def merge_links(dictionary: list[dict], llm: list[dict]) -> list[dict]:
    """Dictionary links first, then the LLM's; one link per (role, node), unlinked names kept."""
    out, seen = [], set()
    for link in dictionary + llm:
        ident = (link["role"], link["node_id"])
        if link["node_id"] is not None and ident in seen:
            continue
        seen.add(ident)
        out.append(link)
    return out


# -- gold links ---------------------------------------------------------------------------------


def load_gold(text: str, *, source: str) -> dict[str, dict]:
    """Gold JSONL -> {qa id: {"q": {node ids}, "a": {node ids}, "set": ..., "phrasing": ...}}.

    The QA id is the sources stage's content id, so run rows and gold rows meet whatever file the
    question came from. A line that is not valid stops with the file and line."""
    from medreason_dist.sources.adapters import medqa
    from medreason_dist.sources.schema import BadRow

    gold: dict[str, dict] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            ident = medqa(rec, "gold", "gold", {})["id"]
            links = rec["gold"]
            gold[ident] = {"q": {int(x["node_id"]) for x in links.get("question", [])},
                           "a": {int(x["node_id"]) for x in links.get("answer", [])},
                           "set": rec.get("set"), "phrasing": rec.get("phrasing")}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, BadRow) as exc:
            raise ValueError(f"{source} line {number}: not a gold grounding row ({type(exc).__name__}: {exc})") from None
    return gold


def method_family(method: str) -> str:
    """dictionary | llm (the LLM-extracted names, however they were linked)."""
    return "dictionary" if method == "dictionary" else "llm"


def score_row(links: list[dict], gold: dict) -> Counter:
    """True/false positives and misses of one row's linked nodes against its gold, per role, and
    true/false positives per method family."""
    counts: Counter = Counter()
    counts["questions"] += 1
    for role in ("q", "a"):
        predicted = {x["node_id"] for x in links if x["role"] == role and x["node_id"] is not None}
        counts["tp"] += len(predicted & gold[role])
        counts["fp"] += len(predicted - gold[role])
        counts["fn"] += len(gold[role] - predicted)
        counts[f"gold_links.{ROLE_NAMES[role]}"] += len(gold[role])
    for x in links:
        if x["node_id"] is None:
            continue
        hit = x["node_id"] in gold[x["role"]]
        counts[f"{'tp' if hit else 'fp'}.{method_family(x['method'])}"] += 1
    return counts


def precision_recall(counts: dict) -> dict:
    """Precision, recall and F1 from summed ``gold.*`` counts (None where undefined)."""
    tp, fp, fn = counts.get("tp", 0), counts.get("fp", 0), counts.get("fn", 0)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else None
    return {"questions": counts.get("questions", 0), "tp": tp, "fp": fp, "fn": fn,
            "precision": precision, "recall": recall, "f1": f1}


def gold_counts(counts: dict) -> dict:
    """The ``gold.*`` entries of a manifest's counts, without the prefix."""
    return {k[len("gold."):]: v for k, v in counts.items() if k.startswith("gold.")}
