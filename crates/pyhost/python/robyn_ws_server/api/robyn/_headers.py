"""Robyn's ``Headers``: the header map of requests and responses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class Headers:
    """Header names are case-insensitive (kept lower-case) and a name may have several values.
    ``get`` answers the last value, ``get_all`` every one; ``set`` replaces the values of a
    name and ``append`` adds one, as in Robyn."""

    __slots__ = ("_values",)

    def __init__(self, default_headers: Mapping[str, Any] | Iterable[tuple[str, str]] | None = None) -> None:
        self._values: dict[str, list[str]] = {}
        if isinstance(default_headers, Mapping):
            self.populate_from_dict(default_headers)
        elif default_headers is not None:
            for key, value in default_headers:
                self.append(key, value)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        """From (name, value) pairs whose names are lower-case already (the server's)."""
        headers = cls.__new__(cls)
        values: dict[str, list[str]] = {}
        for key, value in pairs:
            found = values.get(key)
            if found is None:
                values[key] = [value]
            else:
                found.append(value)
        headers._values = values
        return headers

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self._values.get(key.lower())
        return values[-1] if values else default

    def get_all(self, key: str) -> list[str]:
        return list(self._values.get(key.lower(), ()))

    def set(self, key: str, value: str) -> None:
        """Replaces every value of ``key`` with this one."""
        self._values[key.lower()] = [str(value)]

    def append(self, key: str, value: str) -> None:
        self._values.setdefault(key.lower(), []).append(str(value))

    def extend(self, other: Headers) -> None:
        """Adds every value of ``other`` after this map's own."""
        for key, values in other._values.items():
            self._values.setdefault(key, []).extend(values)

    def remove(self, key: str) -> None:
        self._values.pop(key.lower(), None)

    def contains(self, key: str) -> bool:
        return key.lower() in self._values

    def populate_from_dict(self, headers: Mapping[str, Any]) -> None:
        """Adds each entry; a list value adds each of its items."""
        for key, value in headers.items():
            if isinstance(value, list):
                self._values.setdefault(str(key).lower(), []).extend(str(item) for item in value)
            else:
                self.append(str(key), value)

    def is_empty(self) -> bool:
        return not self._values

    def keys(self) -> list[str]:
        return list(self._values)

    def values(self) -> list[str]:
        """The last value of each name, as ``get`` answers it."""
        return [values[-1] for values in self._values.values() if values]

    def items(self) -> list[tuple[str, str]]:
        """(name, last value) for each name, as ``get`` answers it."""
        return [(key, values[-1]) for key, values in self._values.items() if values]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value), names lower-case, repeated names kept."""
        return [(key, value) for key, values in self._values.items() for value in values]

    def get_headers(self) -> dict[str, list[str]]:
        """Every name with all its values."""
        return {key: list(values) for key, values in self._values.items()}

    def to_dict(self) -> dict[str, str]:
        """A flat dict: the values of a repeated name joined with ``", "`` (RFC 9110)."""
        return {key: ", ".join(values) for key, values in self._values.items()}

    def copy(self) -> Headers:
        return Headers.from_pairs(self.multi_items())

    def __getitem__(self, key: str) -> str | None:
        return self.get(key)

    def __setitem__(self, key: str, value: str) -> None:
        self.set(key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return {key: sorted(values) for key, values in self._values.items()} == {
            key: sorted(values) for key, values in other._values.items()
        }

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"
