"""A provider's words (status words, error codes, result words) read as it means them, whatever
letter case and surrounding whitespace it writes them in.

A provider's document shows one spelling (Dexatel's ``delivered``, Telekom SK's ``DELIVERED``),
and the provider sends another at times (Dexatel's webhook ``"Delivered"``; an SMSC's
``" DELIVRD"``). No API of the set gives two words that differ only in case or surrounding
whitespace a different meaning, so such a word is the word its document shows. An adapter
declares its tables as the document spells them; :class:`~.base.AdapterBase` wraps them in
:class:`Words`, the one place the rule lives. Numbers (Telefoon's error codes) are compared as
they are.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def fold(word: object) -> object:
    """``word`` as words are compared: a string without surrounding whitespace, case-folded
    (``" Delivered "`` -> ``"delivered"``); anything else as it is."""
    return word.strip().casefold() if isinstance(word, str) else word


def same_word(word: object, expected: str) -> bool:
    """``word`` is the string ``expected``, in any letter case and with any surrounding whitespace."""
    return isinstance(word, str) and fold(word) == fold(expected)


def spelled(table: Mapping[K, object], word: K) -> K:
    """``word`` as ``table`` spells it, when ``table`` is :class:`Words` and holds it; else
    ``word`` as it came (so a failure reports a known code as its adapter's table writes it)."""
    key = table.spelling(word) if isinstance(table, Words) else None
    return word if key is None else key


class Words(Mapping[K, V]):
    """A read-only table keyed by a provider's words, looked up by :func:`fold`: ``get``, ``[]``
    and ``in`` find ``"DELIVERED"`` and ``" delivered"`` under the key ``"delivered"``. Iterating
    gives the keys as declared. ValueError if two keys fold to one word (the table would be
    ambiguous)."""

    def __init__(self, table: Mapping[K, V]) -> None:
        self._table = dict(table)
        self._keys: dict[object, K] = {}
        for key in self._table:
            folded = fold(key)
            if folded in self._keys:
                raise ValueError(f"{key!r} and {self._keys[folded]!r} are one word to a provider")
            self._keys[folded] = key

    def spelling(self, word: object) -> K | None:
        """The key ``word`` is, as the table spells it; None if it is none of them (or cannot be
        a key at all: a list from a JSON body)."""
        try:
            return self._keys.get(fold(word))
        except TypeError:
            return None

    def __getitem__(self, word: object) -> V:
        key = self.spelling(word)
        if key is None:
            raise KeyError(word)
        return self._table[key]

    def __contains__(self, word: object) -> bool:
        return self.spelling(word) is not None

    def __iter__(self) -> Iterator[K]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Words({self._table!r})"
