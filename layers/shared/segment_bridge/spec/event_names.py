"""Recognise a Spec event name a partner almost sent, and say why it matched.

Segment turns away partner integrations whose events look like a Spec event without following it.
A list of near-misses cannot foresee how people write names ("Product Add", "View Product",
"Cart Item Added", "checkout_start"), so names are compared by what their words mean:

1. **exact**: a canonical name passes untouched;
2. **casing**: one dict lookup on a case- and separator-blind key (`OrderCompleted`);
3. **words**: the name is read word by word and compared, as a set of meanings, with every
   canonical name and every near-miss the catalog lists ("synonyms"), within one category at a
   time:
   - any casing or separator, and a run-together word split into catalog words ("addtocart");
   - every inflection reduced to one stem (`words.stem`: add/adds/adding/added, product/products);
   - the category's own words ("item" is a product in Ecommerce, "app" an application on mobile,
     "log in" is "sign in" in B2B SaaS) and a few that hold everywhere ("begin" is "start"),
     all in the catalog's `vocabulary`, never guessed;
   - connectives ("to", "from", "as") set aside, and word order free: "Add Product to Cart",
     "Cart Item Added" and "Product Added to Cart" are the same words;
   - a typo inside a long enough word ("Prodcut"), by a bounded edit distance, word by word;
4. **spelling** of a run-together name ("ordercomplted"): one edit from a long joined name.

A match must use all of the name's words, and only words of one Spec event: "Sign Up Started",
"Referral Signed Up" and "Welcome Email Opened" are custom events. Matching is tuned against false
positives, because a custom event mistaken for a Spec event would be renamed (see
docs/conformance.md for the measured rates and the tenant allowlist for names that are custom
on purpose).

Results are cached per name: a partner sends few distinct names, so after warm-up a check is one
dict lookup whatever the outcome. The word index is built on the first name that needs it, not at
import (the Lambda INIT phase is billed and watched); the casing lookup is ready at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

from .catalog import CATALOG, Catalog, Category
from .naming import comparison_key, osa_distance, split_words
from .words import stem

How = Literal["exact", "casing", "form", "synonym", "spelling"]

#: Most edits a whole name may need, and per word: none below 6 letters, 1 up to 9, 2 from 10.
#: (At 5 letters one edit already joins real words: "Trail Started" is not "Trial Started".)
MAX_NAME_EDITS = 2
#: A one-word name is read as a typo only from this length ("Purchse"), and a run-together name
#: only of a joined name this long ("ordercomplted").
MIN_SINGLE_WORD_LENGTH = 8
MIN_JOINED_LENGTH = 10
#: A run-together word is split only from this length, into catalog words of at least
#: MIN_PIECE_LENGTH letters (connectives only inside): "addtocart" is add|to|cart, "carton" stays.
MIN_SPLIT_LENGTH = 6
MIN_PIECE_LENGTH = 3


def word_budget(length: int) -> int:
    return 0 if length < 6 else 1 if length < 10 else 2


@dataclass(frozen=True)
class NameMatch:
    canonical: str
    how: How
    #: The catalog form that matched: the canonical name itself, or a near-miss it lists.
    matched: str
    #: What differs from that form, in words for the partner ('"View" for "Viewed"').
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a name, as read: what was written, its stem, and how it was repaired."""

    written: str
    stem: str
    #: The catalog word a typo was read as ("" if none).
    fixed: str = ""
    #: The run-together word this one was split from ("" if none).
    piece_of: str = ""


@dataclass(frozen=True, slots=True)
class Meaning:
    """One meaningful token of a name after the vocabulary: a stem, and where it came from."""

    stem: str
    #: Index of the word (in the name's words) it comes from.
    word: int
    #: The vocabulary phrase that produced it, as written in the catalog ("" if none), and how
    #: many of the name's words it covers from `word` on.
    via: str = ""
    span: int = 1


@dataclass(frozen=True)
class _Form:
    """A canonical name or a listed near-miss, read the same way as the names compared with it."""

    canonical: str
    text: str
    meanings: tuple[str, ...]
    #: stem -> the word as the form writes it ("ad" -> "Added"), for the partner's message.
    written: Mapping[str, str]
    stop_words: frozenset[str]


class Phrasebook:
    """A category's vocabulary: phrase of stems -> the stems it stands for ("log in" -> sign in)."""

    def __init__(self, entries: Mapping[str, str], irregular: Mapping[str, str]) -> None:
        self.rules: dict[tuple[str, ...], tuple[tuple[str, ...], str]] = {}
        for phrase, meaning in entries.items():
            source = tuple(stem(w, irregular) for w in phrase.split())
            self.rules[source] = (tuple(stem(w, irregular) for w in meaning.split()), meaning)
        self.longest = max(map(len, self.rules), default=0)

    def meanings(self, stems: list[str]) -> list[Meaning]:
        """`stems` with every phrase replaced by what it stands for, longest phrase first."""
        out: list[Meaning] = []
        i = 0
        while i < len(stems):
            for size in range(min(self.longest, len(stems) - i), 0, -1):
                rule = self.rules.get(tuple(stems[i : i + size]))
                if rule is not None:
                    out.extend(Meaning(s, i, rule[1], size) for s in rule[0])
                    i += size
                    break
            else:
                out.append(Meaning(stems[i], i))
                i += 1
        return out


class Lexicon:
    """Every word the catalog uses (names, near-misses, vocabulary): what a name's words are read against."""

    def __init__(self, catalog: Catalog) -> None:
        vocabulary = catalog.vocabulary
        self.irregular = vocabulary.irregular
        self.stop_words = vocabulary.stop_words
        self.relations = vocabulary.relations
        written: set[str] = set()
        for category in catalog.categories:
            for event in category.events:
                for form in (event.name, *event.synonyms):
                    written.update(w.lower() for w in split_words(form))
            for phrase, meaning in category.words.items():
                written.update(phrase.split() + meaning.split())
        for phrase, meaning in vocabulary.words.items():
            written.update(phrase.split() + meaning.split())
        written -= self.stop_words | self.relations
        self.stems = frozenset(self.stem(w) for w in written)
        #: Typo targets by first letter (a typo keeps it): (word as the catalog writes it, its stem).
        self.by_initial: dict[str, list[tuple[str, str]]] = {}
        for word in sorted(written):
            self.by_initial.setdefault(word[0], []).append((word, self.stem(word)))

    def stem(self, word: str) -> str:
        return stem(word, self.irregular)

    def knows(self, word: str) -> bool:
        return word in self.stop_words or word in self.relations or self.stem(word) in self.stems

    def read(self, name: str) -> list[Word] | None:
        """The words of `name`, run-together words split and typos read as catalog words; None
        when it would take more edits than a near-miss may have."""
        words: list[Word] = []
        edits = 0
        raw = split_words(name)
        for original in raw:
            word = original.lower()
            if self.knows(word):
                words.append(Word(original, self.stem(word)))
                continue
            pieces = self.split(word)
            if pieces is not None:
                start = 0
                for piece in pieces:  # the pieces as written (lower case is only for reading)
                    words.append(Word(original[start : start + len(piece)], self.stem(piece), piece_of=original))
                    start += len(piece)
                continue
            fixed, distance = self.correct(word, single=len(raw) == 1)
            edits += distance
            words.append(Word(original, self.stem(fixed or word), fixed=fixed))
        return words if edits <= MAX_NAME_EDITS else None

    def split(self, word: str) -> list[str] | None:
        """A run-together word as the fewest catalog words ("addtocart" -> add, to, cart), or None."""
        if len(word) < MIN_SPLIT_LENGTH or not word.isalpha():
            return None
        n = len(word)
        #: best[i]: the fewest pieces that spell word[:i] (None: none do).
        best: list[list[str] | None] = [[]] + [None] * n
        for end in range(1, n + 1):
            for start in range(end):
                before, piece = best[start], word[start:end]
                if before is None or not self._piece(piece, inner=start > 0 and end < n):
                    continue
                current = best[end]
                if current is None or len(before) + 1 < len(current):
                    best[end] = [*before, piece]
        found = best[n]
        return found if found is not None and len(found) > 1 else None

    def _piece(self, piece: str, *, inner: bool) -> bool:
        if piece in self.stop_words or piece in self.relations:
            return inner  # "addtocart", never "carton" as cart + on
        return len(piece) >= MIN_PIECE_LENGTH and self.stem(piece) in self.stems

    def correct(self, word: str, *, single: bool) -> tuple[str, int]:
        """The one catalog word `word` is a typo of, and the edits it takes; ("", 0) if none is
        close enough, or several words are."""
        found: dict[str, tuple[str, int]] = {}
        for target, target_stem in self.by_initial.get(word[:1], ()):
            budget = word_budget(len(target))
            too_short = single and len(target) < MIN_SINGLE_WORD_LENGTH
            if budget == 0 or too_short or abs(len(target) - len(word)) > budget:
                continue
            distance = osa_distance(word, target, budget)
            if distance <= budget:
                best = found.get(target_stem)
                if best is None or distance < best[1]:
                    found[target_stem] = (target, distance)
        return next(iter(found.values())) if len(found) == 1 else ("", 0)


class CategoryIndex:
    """One category's forms (canonical names and listed near-misses) by the set of their meanings."""

    def __init__(self, category: Category, lexicon: Lexicon, common: Mapping[str, str]) -> None:
        self.name = category.name
        self.lexicon = lexicon
        self.phrasebook = Phrasebook({**common, **category.words}, lexicon.irregular)
        self.forms: dict[tuple[str, ...], _Form] = {}
        for event in category.events:
            for text in (event.name, *event.synonyms):
                self._add(event.name, text)

    def _add(self, canonical: str, text: str) -> None:
        written = split_words(text)
        lower = [w.lower() for w in written]
        meanings = self.meanings(lower, [self.lexicon.stem(w) for w in lower])
        key = tuple(sorted(m.stem for m in meanings))
        existing = self.forms.get(key)
        if existing is not None:
            if existing.canonical != canonical:
                raise ValueError(f"catalog: {text!r} reads as {existing.text!r} ({existing.canonical})")
            return  # a near-miss the matcher derives anyway (the catalog tests list none)
        surfaces: dict[str, str] = {}
        for m in meanings:
            surfaces.setdefault(m.stem, written[m.word])
            surfaces.setdefault(m.stem.partition(":")[2] or m.stem, written[m.word])
        stop = frozenset(w for w in lower if w in self.lexicon.stop_words)
        self.forms[key] = _Form(canonical, text, tuple(m.stem for m in meanings), surfaces, stop)

    def meanings(self, lower: list[str], stems: list[str]) -> list[Meaning]:
        """What the words say: the vocabulary applied, connectives dropped, and "to"/"from" bound to
        the word they govern ("to:cart"), so word order is free but "Added to Cart" stays apart
        from "Cart Added"."""
        out: list[Meaning] = []
        relation = ""
        for meaning in self.phrasebook.meanings(stems):
            word = lower[meaning.word]
            if not meaning.via and word in self.lexicon.stop_words:
                continue
            if not meaning.via and word in self.lexicon.relations:
                relation = word
                continue
            if relation:
                meaning = Meaning(f"{relation}:{meaning.stem}", meaning.word, meaning.via, meaning.span)
                relation = ""
            out.append(meaning)
        if relation:
            out.append(Meaning(relation, len(lower) - 1))
        return out

    def find(self, words: list[Word]) -> tuple[_Form, list[Meaning]] | None:
        meanings = self.meanings([w.written.lower() for w in words], [w.stem for w in words])
        form = self.forms.get(tuple(sorted(m.stem for m in meanings)))
        return None if form is None else (form, meanings)

    def reasons(self, name_words: list[Word], meanings: list[Meaning], form: _Form) -> tuple[How, tuple[str, ...]]:
        """How the name differs from `form`, for the partner: each word read differently, order."""
        reasons: list[str] = []
        seen_pieces: set[str] = set()
        ignored = self.lexicon.stop_words | self.lexicon.relations
        typo, synonym = False, form.text != form.canonical
        for index, word in enumerate(name_words):
            lower = word.written.lower()
            if word.piece_of and word.piece_of not in seen_pieces:
                seen_pieces.add(word.piece_of)
                pieces = " ".join(w.written for w in name_words if w.piece_of == word.piece_of)
                reasons.append(f'"{word.piece_of}" read as "{pieces}"')
            if word.fixed:
                typo = True
                reasons.append(f'"{word.written}" read as "{form.written.get(word.stem, word.fixed)}"')
            via = [m for m in meanings if m.word == index and m.via]
            if via:
                synonym = True
                phrase = " ".join(w.written for w in name_words[index : index + via[0].span])
                targets = [form.written.get(m.stem, m.stem) for m in via]
                reasons.append(f'"{phrase}" for "{" ".join(dict.fromkeys(targets))}"')
            elif any(m.word < index < m.word + m.span for m in meanings):
                continue  # inside a phrase the vocabulary read as a whole
            elif not (word.fixed or word.piece_of or lower in ignored):
                target = form.written.get(word.stem)
                if target is not None and target.lower() != lower:
                    reasons.append(f'"{word.written}" for "{target}"')
        if [m.stem for m in meanings] != list(form.meanings):
            reasons.append("words in another order")
        given = frozenset(w.written.lower() for w in name_words if w.written.lower() in self.lexicon.stop_words)
        reasons.extend(f'without "{w}"' for w in sorted(form.stop_words - given))
        reasons.extend(f'with "{w}"' for w in sorted(given - form.stop_words))
        if form.text != form.canonical:
            reasons.append(f'the catalog lists "{form.text}" as a near-miss')
        how: How = "spelling" if typo else "synonym" if synonym else "form"
        return how, tuple(reasons)


class EventNameIndex:
    """Lookup tables over every canonical name and near-miss, built from the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.exact = frozenset(catalog.events)
        self.by_key: dict[str, NameMatch] = {}
        for event in catalog.events.values():
            self._add_key(event.name, NameMatch(event.name, "casing", event.name))
            for synonym in event.synonyms:
                self._add_key(synonym, NameMatch(event.name, "synonym", synonym))

    def _add_key(self, form: str, match: NameMatch) -> None:
        existing = self.by_key.setdefault(comparison_key(form), match)
        if existing.canonical != match.canonical:
            raise ValueError(f"catalog: {form!r} reads as {existing.matched!r} ({existing.canonical})")

    @cached_property
    def lexicon(self) -> Lexicon:
        return Lexicon(self.catalog)

    @cached_property
    def categories(self) -> tuple[CategoryIndex, ...]:
        common = self.catalog.vocabulary.words
        return tuple(CategoryIndex(c, self.lexicon, common) for c in self.catalog.categories)

    @cached_property
    def joined(self) -> tuple[tuple[str, NameMatch], ...]:
        """Joined keys of multi-word forms long enough for a typo in a run-together name."""
        return tuple(
            (key, NameMatch(m.canonical, "spelling", m.matched))
            for key, m in self.by_key.items()
            if len(key) >= MIN_JOINED_LENGTH and len(split_words(m.matched)) > 1
        )

    def match(self, name: str) -> NameMatch | None:
        if name in self.exact:
            return NameMatch(name, "exact", name)
        found = self.by_key.get(comparison_key(name))
        if found is not None:
            return found
        return self._by_words(name) or self._joined_spelling(name)

    def _by_words(self, name: str) -> NameMatch | None:
        words = self.lexicon.read(name)
        if not words:
            return None
        matches: dict[str, NameMatch] = {}
        for category in self.categories:
            hit = category.find(words)
            if hit is not None:
                form, meanings = hit
                how, reasons = category.reasons(words, meanings, form)
                matches.setdefault(form.canonical, NameMatch(form.canonical, how, form.text, reasons))
        return next(iter(matches.values())) if len(matches) == 1 else None  # two events: not a near-miss

    def _joined_spelling(self, name: str) -> NameMatch | None:
        words = split_words(name)
        if len(words) != 1:
            return None
        key = words[0].lower()
        matches = {
            m.canonical: NameMatch(m.canonical, "spelling", m.matched, (f'"{words[0]}" read as "{m.matched}"',))
            for joined, m in self.joined
            if key[:1] == joined[:1] and abs(len(joined) - len(key)) <= 1 and osa_distance(key, joined, 1) <= 1
        }
        return next(iter(matches.values())) if len(matches) == 1 else None


INDEX = EventNameIndex(CATALOG)


@lru_cache(maxsize=8192)
def match_event_name(name: str) -> NameMatch | None:
    """The Spec event `name` is, or is a near-miss of; None for a custom event."""
    return INDEX.match(name)
