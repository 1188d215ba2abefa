"""The KG lexicon: every node name and synonym with its spelling variants, as matching keys.

Built once per KG version (the ``lexicon`` stage) and read by the dictionary matcher
(:mod:`medreason_dist.kg.matcher`). One row per (key, node): the key is :func:`fold` of a
name, a synonym or a variant of either, so text folded the same way finds it by exact substring
search. Variants cover what differs between a node's name and how questions write it:

- case, punctuation, hyphen or space, possessive 's  (``fold`` itself: "Crohn's" -> "crohn")
- plural / singular of the last word                  ("nail pits" <-> "nail pit")
- British / American spelling                         ("oesophagitis" <-> "esophagitis")
- hyphenated compounds written as one word            ("beta-blocker" -> "betablocker")
- "X, Y" inverted names and "(qualifier)" suffixes   ("diabetes mellitus, type 2" -> "type 2 diabetes mellitus")
- synonyms from the optional synonyms file (``kg.lexicon.synonyms``), each with its own variants

Some keys would match almost everywhere; they are kept but marked ``generic`` with the reason
and the matcher never links them alone (a longer key that contains them still matches):
names shorter than ``min_chars``, a short list of words that name a category rather than a
thing, and names found in more than ``max_question_share`` of a reference question corpus.
Short all-capital names (gene symbols such as "CAT" or "MAX") match case-sensitively instead.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from medreason_dist.kg.textkeys import PHRASE_BREAK, KeyAutomaton, fold, fold_key  # noqa: F401 (re-exported)

LEXICON_SCHEMA = pa.schema([
    pa.field("key", pa.string(), nullable=False),  # fold(term): what the matcher searches for
    pa.field("node_id", pa.int64(), nullable=False),  # kg.csv x_index
    pa.field("node_name", pa.string(), nullable=False),
    pa.field("type", pa.string(), nullable=False),
    pa.field("term", pa.string(), nullable=False),  # the name or synonym the key came from
    pa.field("variant", pa.string(), nullable=False),  # name | synonym:<kind> | +plural, +singular, ...
    pa.field("case_sensitive", pa.bool_(), nullable=False),  # match only where the text writes `term` exactly
    pa.field("generic", pa.bool_(), nullable=False),
    pa.field("generic_reason", pa.string()),  # short | category_word | frequent:<share>
])

# Words that name a kind of thing, not a thing; PrimeKG has nodes called e.g. "disease" or "pain".
CATEGORY_WORDS = frozenset("""
abnormality abnormal acute adult age all aging behavior birth blood body cancer cell chronic death
disease disorder drug female finding gene growth human infection injury life male normal organ other
pain patient phenotype protein syndrome tissue toxicity tumor unknown water
""".split())

# British -> American spellings, as substrings of folded words; each applies in both directions.
SPELLINGS = (
    ("oesophag", "esophag"), ("oedema", "edema"), ("oestr", "estr"), ("haemorrh", "hemorrh"),
    ("haemat", "hemat"), ("haemo", "hemo"), ("haem", "hem"), ("anaem", "anem"), ("leukaem", "leukem"),
    ("ischaem", "ischem"), ("septicaem", "septicem"), ("glycaem", "glycem"), ("kalaem", "kalem"),
    ("natraem", "natrem"), ("calcaem", "calcem"), ("uraem", "urem"), ("paediatr", "pediatr"),
    ("orthopaed", "orthoped"), ("gynaec", "gynec"), ("diarrhoea", "diarrhea"), ("dyspnoea", "dyspnea"),
    ("apnoea", "apnea"), ("amenorrhoea", "amenorrhea"), ("gonorrhoea", "gonorrhea"), ("coeliac", "celiac"),
    ("foet", "fet"), ("caesarean", "cesarean"), ("anaesth", "anesth"), ("aetiolog", "etiolog"),
    ("tumour", "tumor"), ("colour", "color"), ("behaviour", "behavior"), ("fibre", "fiber"), ("centre", "center"),
    ("litre", "liter"), ("sulph", "sulf"), ("isation", "ization"), ("oesinophil", "eosinophil"),
    ("paralys", "paralyz"), ("haemophil", "hemophil"), ("thalassaem", "thalassem"), ("leucocyt", "leukocyt"),
)

# Short stems that occur inside unrelated words ("hem" in "chemical"): swapped at word starts only.
_WORD_START = frozenset({"haem", "hem", "haemo", "hemo", "haemat", "hemat", "foet", "fet", "oestr", "estr",
                         "sulph", "sulf", "anaem", "anem", "haemophil", "hemophil", "haemorrh", "hemorrh"})



_VOWELS = set("aeiou")


def number_variants(key: str) -> list[tuple[str, str]]:
    """Plural of a singular last word and singular of a plural one, by English spelling rules."""
    head, _, last = key.rpartition(" ")
    if len(last) < 4 or not last.isalpha():
        return []
    prefix = head + " " if head else ""
    out = []
    if last.endswith("ies"):
        out.append((prefix + last[:-3] + "y", "singular"))
    elif last.endswith(("sses", "xes", "zes", "ches", "shes")):
        out.append((prefix + last[:-2], "singular"))
    elif last.endswith("ses") and len(last) > 5:
        out.append((prefix + last[:-2] + "is", "singular"))  # crises -> crisis, diagnoses -> diagnosis
    elif last.endswith("s") and not last.endswith(("ss", "us", "is", "sis", "ous")):
        out.append((prefix + last[:-1], "singular"))
    if not last.endswith("s") or last.endswith(("ss", "is")):
        if last.endswith("y") and last[-2] not in _VOWELS:
            out.append((prefix + last[:-1] + "ies", "plural"))
        elif last.endswith("is"):
            out.append((prefix + last[:-2] + "es", "plural"))  # crisis -> crises
        elif last.endswith(("s", "x", "z", "ch", "sh")):
            out.append((prefix + last + "es", "plural"))
        elif not last.endswith(("ia", "um")):
            out.append((prefix + last + "s", "plural"))
    return out


def _swap(key: str, old: str, new: str) -> str:
    if old in _WORD_START:
        return re.sub(rf"(?<![a-z0-9]){old}", new, key)
    return key.replace(old, new)


def spelling_variants(key: str) -> list[str]:
    """The key with British spellings made American and the other way round (each once)."""
    american = british = key
    for uk, us in SPELLINGS:
        american = _swap(american, uk, us)
    for uk, us in SPELLINGS:
        if uk not in british:
            british = _swap(british, us, uk)
    # blood-level words of any stem: hyperprolactinaemia / hyperprolactinemia, -aemic / -emic
    american = re.sub(r"aemi(?=[ac](?![a-z]))", "emi", american)
    british = re.sub(r"(?<![a])emi(?=[ac](?![a-z]))", "aemi", british)
    return [v for i, v in enumerate((american, british)) if v != key and v not in (american, british)[:i]]


def structural_variants(term: str) -> list[tuple[str, str]]:
    """Keys from the way a name is written: inverted "X, Y", a "(qualifier)", hyphenated words."""
    out = []
    bare = re.sub(r"\s*\([^)]*\)\s*$", "", term).strip()
    if bare and bare != term:
        out.append((fold_key(bare), "no_qualifier"))
    if bare.count(",") == 1:
        left, right = (p.strip() for p in bare.split(","))
        if left and right:
            out.append((fold_key(f"{right} {left}"), "uninverted"))
    if "-" in term:
        joined = fold_key(re.sub(r"(?<=\w)-(?=\w)", "", term))
        out.append((joined, "unhyphenated"))
    return [(k, v) for k, v in out if k]


def term_keys(term: str) -> list[tuple[str, str]]:
    """Every key of one name or synonym: (key, how it differs from the term)."""
    base = fold_key(term)
    if not base:
        return []
    seeds = [(base, "")] + structural_variants(term)
    keys: dict[str, str] = {}
    for key, how in seeds:
        keys.setdefault(key, how)
        for spelt in spelling_variants(key):
            keys.setdefault(spelt, "+".join(x for x in (how, "spelling") if x))
    for key, how in list(keys.items()):
        for numbered, number in number_variants(key):
            keys.setdefault(numbered, "+".join(x for x in (how, number) if x))
    return list(keys.items())


def is_symbol(term: str) -> bool:
    """Short all-capital names (gene symbols, "HIV", "ACE"): matched only as written."""
    stripped = term.replace("-", "")
    return 2 <= len(stripped) <= 6 and stripped.isalnum() and stripped.upper() == stripped and any(
        c.isalpha() for c in stripped)


@dataclass(frozen=True)
class LexiconSettings:
    min_chars: int = 4  # keys shorter than this are generic (unless a case-sensitive symbol)
    max_question_share: float = 0.15  # keys in more of the reference questions are generic


def read_synonyms(text: str, *, source: str) -> list[dict]:
    """Rows of a synonyms CSV: node_index, synonym[, kind]. A bad row stops with file and line."""
    rows = []
    reader = csv.DictReader(io.StringIO(text))
    missing = {"node_index", "synonym"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{source}: the header lacks {', '.join(sorted(missing))} (need node_index,synonym[,kind])")
    for line, rec in enumerate(reader, start=2):
        try:
            node = int(rec["node_index"])
        except (TypeError, ValueError):
            raise ValueError(f"{source} line {line}: node_index {rec.get('node_index')!r} is not an integer") from None
        syn = (rec.get("synonym") or "").strip()
        if not syn:
            raise ValueError(f"{source} line {line}: empty synonym")
        rows.append({"node_id": node, "synonym": syn, "kind": (rec.get("kind") or "exact").strip() or "exact"})
    return rows


def build_lexicon(nodes: pa.Table, synonyms: list[dict] | None = None, reference_questions: list[str] | None = None,
                  settings: LexiconSettings = LexiconSettings()) -> tuple[pa.Table, dict]:
    """The lexicon of ``nodes`` (node_id, name, type) and ``synonyms``; returns (table, counts).

    A synonym of an unknown node is counted (``synonyms_unknown_node``), not used."""
    ids = nodes.column("node_id").to_pylist()
    names = nodes.column("name").to_pylist()
    types = nodes.column("type").to_pylist()
    by_id = {i: (n, t) for i, n, t in zip(ids, names, types)}
    terms: list[tuple[int, str, str]] = [(i, n, "name") for i, n in zip(ids, names)]
    counts: Counter = Counter()
    for syn in synonyms or []:
        if syn["node_id"] not in by_id:
            counts["synonyms_unknown_node"] += 1
            continue
        terms.append((syn["node_id"], syn["synonym"], f"synonym:{syn['kind']}"))
    rows: dict[tuple[str, int], dict] = {}
    for node_id, term, origin in terms:
        symbol = is_symbol(term)
        keys = [(fold_key(term), "")] if symbol else term_keys(term)
        for key, how in keys:
            if not key or (key, node_id) in rows:
                continue
            name, typ = by_id[node_id]
            rows[(key, node_id)] = {"key": key, "node_id": node_id, "node_name": name, "type": typ, "term": term,
                                    "variant": origin + (f"+{how}" if how else ""), "case_sensitive": symbol,
                                    "generic": False, "generic_reason": None}
    _mark_generic(list(rows.values()), reference_questions, settings)
    table = pa.Table.from_pylist(sorted(rows.values(), key=lambda r: (r["key"], r["node_id"])), schema=LEXICON_SCHEMA)
    counts.update({"terms": len(terms), "keys": table.num_rows, "nodes": len(by_id),
                   "generic": sum(r["generic"] for r in rows.values()),
                   "case_sensitive": sum(r["case_sensitive"] for r in rows.values())})
    return table, dict(counts)


def _mark_generic(rows: list[dict], reference_questions: list[str] | None, settings: LexiconSettings) -> None:
    for r in rows:
        if r["case_sensitive"]:
            continue
        if len(r["key"]) < settings.min_chars:
            r["generic"], r["generic_reason"] = True, "short"
        elif r["key"] in CATEGORY_WORDS:
            r["generic"], r["generic_reason"] = True, "category_word"
    if not reference_questions:
        return
    share = question_shares({r["key"] for r in rows if not r["generic"] and not r["case_sensitive"]},
                            reference_questions)
    for r in rows:
        s = share.get(r["key"], 0.0)
        if not r["generic"] and s > settings.max_question_share:
            r["generic"], r["generic_reason"] = True, f"frequent:{s:.3f}"


def question_shares(keys: set[str], questions: list[str]) -> dict[str, float]:
    """Share of ``questions`` whose folded text contains each key as whole words."""
    automaton = KeyAutomaton(keys)
    seen: Counter = Counter()
    for q in questions:
        folded, _ = fold(q)
        seen.update({key for _, _, key in automaton.bounded_matches(folded)})
    total = max(len(questions), 1)
    return {k: c / total for k, c in seen.items()}


def reference_questions_from_jsonl(text: str) -> list[str]:
    """Question stems of a MedQA-style JSONL (the reference corpus for ``frequent``)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                out.append(str(json.loads(line).get("question") or ""))
            except json.JSONDecodeError:
                continue
    return out
