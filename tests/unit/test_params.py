"""Easy-access parameters (robyn/_params.py): query values converted to the annotated type,
defaults, optional and repeated parameters, injected dependencies, and Robyn's error texts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, Optional

import pytest
from robyn import QueryParams, _params
from robyn._params import ParameterError, ParameterPlan

DEPENDENCIES = {"global_dependencies": {"db": "the db"}, "router_dependencies": {"cache": "the cache"}}


@pytest.fixture(autouse=True, params=["eval_str", "get_type_hints"])
def signature_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test twice: with the signature as Python 3.10+ reads it, and as on 3.9."""
    if request.param == "get_type_hints":
        monkeypatch.setattr(_params, "signature", _params.signature_from_type_hints)
    yield


def resolve(function: Callable[..., Any], *pairs: tuple[str, str]) -> dict[str, Any]:
    """The keyword arguments `function` gets on a connection with these query pairs."""
    websocket = SimpleNamespace(query_params=QueryParams(pairs))
    return ParameterPlan(function).resolve(websocket, lambda: DEPENDENCIES)


def error(function: Callable[..., Any], *pairs: tuple[str, str]) -> str:
    with pytest.raises(ParameterError) as raised:
        resolve(function, *pairs)
    return str(raised.value)


# -- conversion -----------------------------------------------------------------------------


def test_str_unannotated_and_any_are_passed_as_sent() -> None:
    def handler(ws: object, name: str, raw, anything: Any) -> None: ...

    pairs = [("name", "Ada"), ("raw", "7"), ("anything", "")]
    assert resolve(handler, *pairs) == {"name": "Ada", "raw": "7", "anything": ""}


def test_int_and_float_are_converted() -> None:
    def handler(ws: object, page: int, ratio: float) -> None: ...

    assert resolve(handler, ("page", "42"), ("ratio", "2.5")) == {"page": 42, "ratio": 2.5}
    assert resolve(handler, ("page", "-1"), ("ratio", "3")) == {"page": -1, "ratio": 3.0}


@pytest.mark.parametrize(
    ("annotation", "value", "type_name"),
    [(int, "abc", "int"), (int, "2.5", "int"), (int, "", "int"), (float, "many", "float")],
)
def test_a_value_that_does_not_convert_is_named_in_robyns_words(annotation: type, value: str, type_name: str) -> None:
    def handler(ws: object, page: Any) -> None: ...

    handler.__annotations__["page"] = annotation
    assert error(handler, ("page", value)) == f"Invalid value '{value}' for parameter 'page': expected {type_name}"


def test_the_exact_text_for_an_invalid_int() -> None:
    def handler(ws: object, page: int) -> None: ...

    assert error(handler, ("page", "abc")) == "Invalid value 'abc' for parameter 'page': expected int"


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "yes", "on"])
def test_bool_true(value: str) -> None:
    def handler(ws: object, flag: bool) -> None: ...

    assert resolve(handler, ("flag", value)) == {"flag": True}


@pytest.mark.parametrize("value", ["false", "False", "0", "no", "off", ""])
def test_bool_false_and_an_empty_value_is_false(value: str) -> None:
    def handler(ws: object, flag: bool) -> None: ...

    assert resolve(handler, ("flag", value)) == {"flag": False}


def test_bool_refuses_anything_else() -> None:
    def handler(ws: object, flag: bool) -> None: ...

    assert error(handler, ("flag", "maybe")) == "Invalid value 'maybe' for parameter 'flag': expected bool"


def test_the_last_of_repeated_values_counts_for_a_single_parameter() -> None:
    def handler(ws: object, page: int) -> None: ...

    assert resolve(handler, ("page", "1"), ("page", "2")) == {"page": 2}


# -- missing values, defaults, Optional -------------------------------------------------------


def test_a_missing_required_parameter_in_robyns_words() -> None:
    def handler(ws: object, x: int) -> None: ...

    assert error(handler) == "Missing required parameter: 'x'"


def test_the_first_missing_parameter_is_the_one_named() -> None:
    def handler(ws: object, first: str, second: str) -> None: ...

    assert error(handler, ("second", "here")) == "Missing required parameter: 'first'"


def test_defaults_fill_in_for_missing_values_and_are_not_converted() -> None:
    def handler(ws: object, page: int = 1, name: str = "anonymous", limit: int | None = None) -> None: ...

    assert resolve(handler) == {"page": 1, "name": "anonymous", "limit": None}
    assert resolve(handler, ("page", "3"), ("limit", "10")) == {"page": 3, "name": "anonymous", "limit": 10}


def optional(ws: object, page: Optional[int]) -> None: ...  # noqa: UP045 (the spelling under test)


def union(ws: object, page: int | None) -> None: ...


def union_none_first(ws: object, page: None | int) -> None: ...  # noqa: RUF036 (the order under test)


@pytest.mark.parametrize("handler", [optional, union, union_none_first])
def test_optional_is_none_when_missing_and_converted_when_present(handler: Callable[..., Any]) -> None:
    assert resolve(handler) == {"page": None}
    assert resolve(handler, ("page", "5")) == {"page": 5}
    assert error(handler, ("page", "five")) == "Invalid value 'five' for parameter 'page': expected int"


# -- lists ------------------------------------------------------------------------------------


def test_a_list_gets_every_value_converted() -> None:
    def handler(ws: object, ids: list[int], tags: list[str], raw: list) -> None: ...

    pairs = [("ids", "1"), ("tags", "a"), ("ids", "2"), ("raw", "x"), ("tags", "b")]
    assert resolve(handler, *pairs) == {"ids": [1, 2], "tags": ["a", "b"], "raw": ["x"]}


def test_a_list_value_that_does_not_convert() -> None:
    def handler(ws: object, ids: list[int]) -> None: ...

    assert error(handler, ("ids", "1"), ("ids", "x")) == "Invalid value 'x' for parameter 'ids': expected int"


def test_a_missing_list_is_required_unless_it_has_a_default_or_is_optional() -> None:
    def required(ws: object, ids: list[int]) -> None: ...

    def defaulted(ws: object, ids: list[int] = [0]) -> None: ...  # noqa: B006 (the default under test)

    def optional(ws: object, ids: Optional[list[int]]) -> None: ...  # noqa: UP045 (the spelling under test)

    assert error(required) == "Missing required parameter: 'ids'"
    assert resolve(defaulted) == {"ids": [0]}
    assert resolve(optional) == {"ids": None}
    assert resolve(optional, ("ids", "4")) == {"ids": [4]}


# -- the websocket, query_params and dependencies ---------------------------------------------


def test_the_first_positional_parameter_is_the_websocket_whatever_its_name() -> None:
    def positional(connection: object) -> None: ...

    def keyword_only(*, page: int = 1) -> None: ...

    def nothing() -> None: ...

    assert ParameterPlan(positional).takes_websocket
    assert not ParameterPlan(keyword_only).takes_websocket
    assert not ParameterPlan(nothing).takes_websocket
    assert resolve(positional) == {}
    assert resolve(keyword_only, ("page", "2")) == {"page": 2}
    assert resolve(nothing) == {}


def test_star_args_and_kwargs_take_nothing() -> None:
    def handler(ws: object, *args: Any, page: int = 1, **kwargs: Any) -> None: ...

    assert resolve(handler, ("page", "9"), ("other", "x")) == {"page": 9}


def test_query_params_by_name_or_by_annotation() -> None:
    def handler(ws: object, query_params: Any, query: QueryParams) -> None: ...

    arguments = resolve(handler, ("a", "1"))
    assert arguments["query_params"] == QueryParams([("a", "1")])
    assert arguments["query"] is arguments["query_params"]


def test_dependencies_are_injected_by_name() -> None:
    def handler(ws: object, global_dependencies: dict[str, Any], router_dependencies: dict[str, Any]) -> None: ...

    assert resolve(handler) == DEPENDENCIES


def test_the_signature_is_read_once_when_the_plan_is_made() -> None:
    def handler(ws: object, page: int) -> None: ...

    plan = ParameterPlan(handler)
    handler.__annotations__["page"] = "str"
    websocket = SimpleNamespace(query_params=QueryParams([("page", "7")]))
    assert plan.resolve(websocket, lambda: DEPENDENCIES) == {"page": 7}
