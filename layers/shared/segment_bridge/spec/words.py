"""Words of an event name reduced to what they mean: one stem for every inflection of a word.

"add", "adds", "added" and "adding" all become "ad"; "product" and "products" become "product";
"cancel", "canceled" and "cancelled" become "cancel". The stem is not a dictionary word, only a
key that every form of one word shares, which is all the name matcher needs to compare words.

Why not a lemmatizer library: lemminflect and simplemma each cost about 300 ms to import and load
(numpy and their dictionaries; `bench/bench_conformance.py` measures it), ten times the whole
ingest package's own import, paid on every Lambda cold start. Only the few hundred words of the
Spec catalog can make a name a Spec event, and for those this covers English's inflections
(-s/-es/-ies, -ed/-ied, -ing, doubled consonants, a silent e) plus the irregular forms the
catalog lists (sent, bought, and "-eed" verbs such as freed). `tests/unit/test_event_name_matcher.py`
checks every form lemminflect knows of every catalog word against it. Derivational suffixes
(-ment, -ion, -er) are left alone on purpose: a full stemmer (Porter) makes "Experience" and
"Experiment" one word.

Pure functions; the irregular forms come from the catalog (`spec_catalog.json` "vocabulary").
"""

from __future__ import annotations

from collections.abc import Mapping

_VOWELS = frozenset("aeiouy")
#: Doubled letters that belong to the word, not to an inflection: vowels (free, see), and d, so
#: "add"/"added" (stem "add") stay apart from "ad"/"ads" (Video Ad Started).
_KEEP_DOUBLED = _VOWELS | {"d"}
#: Endings whose -es is a plural/3rd-person suffix (search-es, box-es), as opposed to a silent e + s.
_ES_AFTER = ("sses", "shes", "ches", "xes", "zzes")
#: Final s that is part of the word, not a plural: status, analysis, access.
_NOT_PLURAL_S = ("ss", "us", "is")


def _has_vowel(text: str) -> bool:
    return any(c in _VOWELS for c in text)


def strip_inflection(word: str) -> str:
    """`word` (lower case) without its inflectional suffix, spelled as the suffix left it."""
    n = len(word)
    if n > 4 and word.endswith(("ies", "ied")):
        return word[:-3] + "y"  # applies / applied -> apply
    if n > 4 and word.endswith(_ES_AFTER):
        return word[:-2]  # searches -> search
    if n > 5 and word.endswith("ing") and _has_vowel(word[:-3]):
        return word[:-3]  # opening -> open; "string", "thing" keep theirs
    if n > 3 and word.endswith("ed") and not word.endswith("eed") and _has_vowel(word[:-2]):
        return word[:-2]  # viewed -> view; "need", "proceed" keep theirs ("freed" is irregular here)
    if n > 2 and word.endswith("s") and not word.endswith(_NOT_PLURAL_S):
        return word[:-1]  # products -> product, completes -> complete
    return word


def stem(word: str, irregular: Mapping[str, str]) -> str:
    """The key every inflection of `word` shares ("Completed", "completes" -> "complet").

    After the suffix goes, a silent final e and a doubled final consonant are dropped too, so the
    base form and the inflected ones agree: complete/complet-ed, tap/tapp-ed, cancel/cancell-ed.
    """
    lower = word.lower()
    base = irregular.get(lower)
    base = strip_inflection(lower) if base is None else base
    if len(base) > 3 and base.endswith("e"):
        base = base[:-1]
    if len(base) > 1 and base[-1] == base[-2] and base[-1] not in _KEEP_DOUBLED:
        base = base[:-1]
    return base
