"""Robyn's ``QueryParams``: a multi-map of the connection URL's query string."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class QueryParams:
    """Query parameters, repeated keys kept. ``get`` answers the last value of a key, as Robyn
    does; ``get_first`` and ``get_all`` reach the others."""

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self._values.get(key)
        return values[-1] if values else default

    def get_first(self, key: str) -> str | None:
        values = self._values.get(key)
        return values[0] if values else None

    def get_all(self, key: str) -> list[str] | None:
        values = self._values.get(key)
        return list(values) if values else None

    def set(self, key: str, value: str) -> None:
        self._values.setdefault(key, []).append(value)

    def extend(self, other: QueryParams) -> None:
        for key, values in other._values.items():
            self._values.setdefault(key, []).extend(values)

    def contains(self, key: str) -> bool:
        return key in self._values

    def empty(self) -> bool:
        return not self._values

    def to_dict(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self._values.items()}

    @property
    def queries(self) -> dict[str, list[str]]:
        """Every key with all its values: the attribute Robyn documents (its own raises
        AttributeError), a copy as ``to_dict``."""
        return self.to_dict()

    def keys(self) -> list[str]:
        return list(self._values)

    def values(self) -> list[str]:
        return [values[-1] for values in self._values.values()]

    def items(self) -> list[tuple[str, str]]:
        return [(key, values[-1]) for key, values in self._values.items()]

    def multi_items(self) -> list[tuple[str, str]]:
        return [(key, value) for key, values in self._values.items() for value in values]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QueryParams) and self._values == other._values

    def __repr__(self) -> str:
        return f"QueryParams({self.multi_items()!r})"
