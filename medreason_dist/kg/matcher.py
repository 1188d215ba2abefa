"""Dictionary matching of text against the KG lexicon (Aho-Corasick over folded text).

The text is folded exactly as the lexicon's keys were (:func:`medreason_dist.kg.lexicon.fold`),
every key occurrence is found in one pass of a ``pyahocorasick`` automaton, occurrences that do
not start and end on word breaks are dropped, and the rest are chosen longest first ("type 2
diabetes mellitus" wins over "diabetes mellitus" inside it), never overlapping. Each hit keeps its
span in the original text. When one key names several nodes, the node whose own name (rather than
a synonym or a variant) gave the key wins, then the type order below; the number of other
candidates is kept as evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa

from medreason_dist.kg.textkeys import KeyAutomaton, fold

# When one key names nodes of several types (PrimeKG has "asthma" as a disease and a phenotype),
# the earlier type is taken.
TYPE_ORDER = ("disease", "drug", "effect/phenotype", "gene/protein", "anatomy", "exposure", "pathway",
              "biological_process", "molecular_function", "cellular_component")


@dataclass(frozen=True)
class Hit:
    start: int  # span in the original text, end exclusive
    end: int
    surface: str
    node_id: int
    node_name: str
    type: str
    variant: str  # how the lexicon key came about (name, synonym:lay+plural, ...)
    alternatives: int  # other nodes the same key names

    def as_dict(self) -> dict:
        return asdict(self)


def _rank(entry: dict) -> tuple:
    variant = entry["variant"]
    origin_rank = 0 if variant == "name" else 1 if variant.startswith("name") else 2
    typ = entry["type"]
    return (origin_rank, TYPE_ORDER.index(typ) if typ in TYPE_ORDER else len(TYPE_ORDER), entry["node_id"])


def _written_as(surface: str, term: str) -> bool:
    return surface.replace("-", "") == term.replace("-", "")


class LexiconMatcher:
    """Finds lexicon entries in text; build once per worker (the automaton is the cost)."""

    def __init__(self, lexicon: pa.Table) -> None:
        self._entries: dict[str, list[dict]] = {}
        for entry in lexicon.select(["key", "node_id", "node_name", "type", "term", "variant", "case_sensitive",
                                     "generic"]).to_pylist():
            self._entries.setdefault(entry["key"], []).append(entry)
        for entries in self._entries.values():
            entries.sort(key=_rank)
        self._automaton = KeyAutomaton(self._entries)

    def find(self, text: str | None) -> tuple[list[Hit], int]:
        """The hits in ``text`` in reading order, and how many generic-only spans were passed over."""
        if not text:
            return [], 0
        folded, offsets = fold(text)
        spans = sorted(self._automaton.bounded_matches(folded), key=lambda s: (s[0] - s[1], s[0]))
        taken: list[tuple[int, int]] = []
        hits: list[Hit] = []
        generic = 0
        for start, end, key in spans:
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            o_start, o_end = offsets[start], offsets[end - 1] + 1
            surface = text[o_start:o_end]
            usable = [e for e in self._entries[key] if not e["case_sensitive"] or _written_as(surface, e["term"])]
            if not usable:
                continue  # e.g. "cat" in prose is not the gene CAT: leave the words free for other keys
            taken.append((start, end))
            specific = [e for e in usable if not e["generic"]]
            if not specific:
                generic += 1
                continue
            best = specific[0]
            others = len({e["node_id"] for e in specific}) - 1
            hits.append(Hit(o_start, o_end, surface, best["node_id"], best["node_name"], best["type"],
                            best["variant"], others))
        hits.sort(key=lambda h: h.start)
        return hits, generic
