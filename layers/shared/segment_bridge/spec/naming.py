"""String forms of names: words, Proper Case, snake_case, comparison keys and a bounded edit distance.

Pure functions with no knowledge of the Spec; `spec_names` and `conformance` build on them. They
run on the ingest hot path, so they avoid regex backtracking and stop early where they can.
"""

from __future__ import annotations

import re

#: Lower-case words that may stay lower case inside a Proper Case name, as in the Spec's own
#: "Email Marked as Spam" and "Product Added to Wishlist".
CONNECTIVES = frozenset("a an and as at by for from in into of on or per the to via vs with".split())

_SEPARATORS = re.compile(r"[\W_]+")
#: Boundaries inside a run of letters: "orderId" -> order|Id, "HTTPStatus" -> HTTP|Status.
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SNAKE = re.compile(r"[^\W_]+(?:_[^\W_]+)*")
#: Brand-style words such as iPhone, eBay, iOS: accepted inside a multi-word Proper Case name.
_BRAND_WORD = re.compile(r"[a-z][A-Z]\w*")


def split_words(name: str) -> list[str]:
    """Words of a name in any style: separators, spaces and camelCase humps all split."""
    words: list[str] = []
    for chunk in _SEPARATORS.split(name):
        if chunk:
            words.extend(part for part in _CAMEL_BOUNDARY.split(chunk) if part)
    return words


def comparison_key(name: str) -> str:
    """Case- and separator-blind key: "Order Completed", "order_completed" and "ORDER-COMPLETED" agree."""
    return _SEPARATORS.sub("", name).lower()


def is_proper_case(name: str) -> bool:
    """Segment's convention for event names: capitalised words separated by single spaces.

    Lower-case connectives ("as", "to") are fine after the first word, as are brand-style words
    (iPhone) in a multi-word name and acronyms (SMS Sent). A name entirely in capitals, a single
    camelCase/PascalCase compound ("ReportExported") or one with underscores is not Proper Case.
    """
    if not name or "_" in name:
        return False
    words = name.split(" ")
    if "" in words:  # leading, trailing or doubled space
        return False
    if len(words) == 1 and _CAMEL_BOUNDARY.search(words[0]) and not words[0].isupper():
        return False
    letters = [c for c in name if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and any(len(w) >= 5 for w in words):
        return False  # "REPORT EXPORTED"; short acronyms alone ("NPS") pass
    for position, word in enumerate(words):
        first = word[0]
        if first.isupper() or first.isdigit() or not first.isalpha():
            continue
        if position > 0 and word in CONNECTIVES:
            continue
        if len(words) > 1 and _BRAND_WORD.fullmatch(word):
            continue
        return False
    return True


def to_proper_case(name: str) -> str:
    """ "report_exported", "reportExported" and "REPORT-EXPORTED" all become "Report Exported"."""
    words = split_words(name)
    uniform = name.isupper() or name.islower()
    return " ".join(w.capitalize() if uniform else w[0].upper() + w[1:] for w in words)


def is_snake_case(key: str) -> bool:
    return key == key.lower() and _SNAKE.fullmatch(key) is not None


def to_snake_case(key: str) -> str:
    """ "orderId", "OrderID", "order-id" and "Order Id" all become "order_id"."""
    return "_".join(word.lower() for word in split_words(key))


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a transposition counts as one edit), capped at `limit + 1`.

    Only the diagonal band |i - j| <= limit is computed, and the loop stops as soon as every cell
    in a row exceeds `limit`, so a comparison costs O(limit * len) and usually far less.
    """
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    over = limit + 1
    previous2: list[int] = []
    previous = [j if j <= limit else over for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        current = [over] * (len(b) + 1)
        if i <= limit:
            current[0] = i
        low, high = max(1, i - limit), min(len(b), i + limit)
        char = a[i - 1]
        for j in range(low, high + 1):
            value = previous[j - 1] + (char != b[j - 1])
            value = min(value, previous[j] + 1, current[j - 1] + 1)
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = min(value, over)
        if min(current[low - 1 : high + 1]) > limit:
            return over
        previous2, previous = previous, current
    return previous[-1]
