"""Folded text and whole-word key search: what the KG lexicon's keys are made of and how text is
searched for them (:mod:`medreason_dist.kg.lexicon` builds keys, :mod:`medreason_dist.kg.matcher`
chooses among the occurrences)."""

from __future__ import annotations

from typing import Iterable, Iterator

_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "κ": "kappa", "λ": "lambda", "μ": "mu"}
_APOSTROPHES = "'’"

# Punctuation that ends a phrase: no key matches across it ("ataxia, telangiectasia" is two
# findings, not the disease "ataxia telangiectasia"). Folded to "|"; other punctuation (hyphens,
# slashes, apostrophes) is a plain word break.
_HARD_BREAKS = frozenset(",;:()[]{}!?")
PHRASE_BREAK = "|"


def fold(text: str) -> tuple[str, list[int]]:
    """Lower-case letters and digits with one space between words (``|`` where punctuation ends a
    phrase), and for each character of the result the index of the character of ``text`` it came
    from (spans map back exactly).

    Hyphens and slashes become word breaks, a possessive 's disappears ("Crohn's disease" ->
    "crohn disease"), Greek letters are spelt out ("TNF-α" -> "tnf alpha")."""
    out: list[str] = []
    offsets: list[int] = []

    def separate(i: int, hard: bool) -> None:
        if not out:
            return
        if hard:
            if out[-1] == " ":
                out[-1], offsets[-1] = PHRASE_BREAK, i
            elif out[-1] != PHRASE_BREAK:
                out.append(PHRASE_BREAK)
                offsets.append(i)
        elif out[-1] not in (" ", PHRASE_BREAK):
            out.append(" ")
            offsets.append(i)

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _APOSTROPHES:
            nxt = text[i + 1] if i + 1 < n else ""
            after = text[i + 2] if i + 2 < n else ""
            if nxt in "sS" and not after.isalnum():
                i += 2  # possessive 's
                continue
            i += 1  # other apostrophes join the word ("o'clock"); rare in names
            continue
        spelt = _GREEK.get(ch)
        if spelt is not None:
            separate(i, hard=False)
            out.extend(spelt)
            offsets.extend([i] * len(spelt))
            i += 1
            continue
        low = ch.lower()
        if len(low) != 1:
            low = low[0]
        if low.isalnum():
            out.append(low)
            offsets.append(i)
        else:
            # a full stop ends a phrase unless a digit follows ("1.5 mg")
            separate(i, hard=ch in _HARD_BREAKS or (ch == "." and not (i + 1 < n and text[i + 1].isdigit())))
        i += 1
    while out and out[-1] in (" ", PHRASE_BREAK):
        out.pop()
        offsets.pop()
    return "".join(out), offsets


def fold_key(text: str) -> str:
    return fold(text)[0]


_BREAKS = (" ", PHRASE_BREAK)


class KeyAutomaton:
    """Whole-word occurrences of a set of keys in folded text."""

    def __init__(self, keys: Iterable[str]) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for key in keys:
            if key:
                self._automaton.add_word(key, key)
        self._empty = len(self._automaton) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def bounded_matches(self, folded: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, key) of every occurrence that starts and ends at a word break."""
        if self._empty:
            return
        last = len(folded) - 1
        for end, key in self._automaton.iter(folded):
            start = end - len(key) + 1
            if (start == 0 or folded[start - 1] in _BREAKS) and (end == last or folded[end + 1] in _BREAKS):
                yield start, end + 1, key
