"""Recognise a Spec event name a partner almost sent: another casing, a synonym, a close spelling.

Segment turns away partner integrations that send "Purchase" for "Order Completed" or "install"
for "Application Installed". Matching is tuned against false positives, because a custom event
mistaken for a Spec event would be renamed:

- casing and separators: one dict lookup on a case- and separator-blind key;
- synonyms: the catalog's curated list, same lookup (never guessed);
- spelling: a bounded edit distance, word by word, only where a word is long enough that one
  typo is unlikely to turn one real word into another ("Cart"/"Chart" and "Trail"/"Trial" are
  never related, "Complted"/"Completed" are); a word must keep its first letter, and a
  single-word name needs 8 letters.

Results are cached per name: a partner sends few distinct names, so after warm-up a check is
one dict lookup whatever the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from .catalog import CATALOG, Catalog
from .naming import comparison_key, osa_distance, split_words

How = Literal["exact", "casing", "synonym", "spelling"]

#: Most edits a whole name may need, and per word: none below 6 letters, 1 up to 9, 2 from 10.
#: (At 5 letters one edit already joins real words: "Trail Started" is not "Trial Started".)
MAX_NAME_EDITS = 2
MIN_SINGLE_WORD_LENGTH = 8
MIN_JOINED_LENGTH = 10


def word_budget(length: int) -> int:
    return 0 if length < 6 else 1 if length < 10 else 2


@dataclass(frozen=True)
class NameMatch:
    canonical: str
    how: How
    #: The catalog form that matched: the canonical name itself, or the synonym.
    matched: str


@dataclass(frozen=True)
class _Candidate:
    words: tuple[str, ...]
    key: str
    match: NameMatch


class EventNameIndex:
    """Lookup tables over every canonical name and synonym, built once from the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.exact = frozenset(catalog.events)
        self.by_key: dict[str, NameMatch] = {}
        #: (word count, first letter): a typo never changes either (see `_close`).
        self.by_shape: dict[tuple[int, str], list[_Candidate]] = {}
        self.joined: list[_Candidate] = []
        for event in catalog.events.values():
            self._add(event.name, NameMatch(event.name, "casing", event.name))
            for synonym in event.synonyms:
                self._add(synonym, NameMatch(event.name, "synonym", synonym))

    def _add(self, form: str, match: NameMatch) -> None:
        key = comparison_key(form)
        existing = self.by_key.setdefault(key, match)
        if existing.canonical != match.canonical:
            raise ValueError(f"catalog: {form!r} reads as {existing.matched!r} ({existing.canonical})")
        words = tuple(w.lower() for w in split_words(form))
        candidate = _Candidate(words, key, NameMatch(match.canonical, "spelling", form))
        if len(words) > 1 or len(key) >= MIN_SINGLE_WORD_LENGTH:
            self.by_shape.setdefault((len(words), words[0][0]), []).append(candidate)
        if len(words) > 1 and len(key) >= MIN_JOINED_LENGTH:
            self.joined.append(candidate)

    def match(self, name: str) -> NameMatch | None:
        if name in self.exact:
            return NameMatch(name, "exact", name)
        found = self.by_key.get(comparison_key(name))
        if found is not None:
            return found
        return self._spelling(name)

    def _spelling(self, name: str) -> NameMatch | None:
        words = tuple(w.lower() for w in split_words(name))
        if not words:
            return None
        length = sum(map(len, words))
        matches = {
            c.match.canonical: c.match
            for c in self.by_shape.get((len(words), words[0][0]), ())
            if abs(len(c.key) - length) <= MAX_NAME_EDITS and _close(words, c.words)
        }
        if not matches and len(words) == 1:
            key = words[0]
            matches = {
                c.match.canonical: c.match
                for c in self.joined
                if key[0] == c.key[0] and abs(len(c.key) - len(key)) <= 1 and osa_distance(key, c.key, 1) <= 1
            }
        return next(iter(matches.values())) if len(matches) == 1 else None


def _close(words: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
    total = 0
    for word, target in zip(words, candidate, strict=False):
        if word == target:
            continue
        budget = word_budget(len(target))
        if budget == 0 or word[0] != target[0]:
            return False
        distance = osa_distance(word, target, budget)
        total += distance
        if distance > budget or total > MAX_NAME_EDITS:
            return False
    return total > 0


INDEX = EventNameIndex(CATALOG)


@lru_cache(maxsize=8192)
def match_event_name(name: str) -> NameMatch | None:
    """The Spec event `name` is, or is a near-miss of; None for a custom event."""
    return INDEX.match(name)
