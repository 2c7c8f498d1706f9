"""De-duplication of generated queries: exact text first, then text normalised (case, punctuation, spaces)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable

_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower case, NFKC, punctuation dropped, runs of white space collapsed: "What is THIS?" → "what is this"."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


class Deduper:
    """Remembers what it has seen; `check` says whether a query is new, an exact or a normalised duplicate.

    `scope` keys what counts as the same query: for a query with an image the image is part of it (one question
    may be asked of many images), a text-only query is the same query whatever source it came from.
    """

    def __init__(self) -> None:
        self.exact: set[tuple[Hashable, str]] = set()
        self.loose: set[tuple[Hashable, str]] = set()

    def check(self, text: str, scope: Hashable = None) -> str:
        """"new", "exact" or "normalised"; a new query is remembered."""
        if (scope, text) in self.exact:
            return "exact"
        norm = normalise(text)
        if (scope, norm) in self.loose:
            return "normalised"
        self.exact.add((scope, text))
        self.loose.add((scope, norm))
        return "new"
