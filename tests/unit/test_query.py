"""``QueryParams``: Robyn's multi-map of the connection URL's query string."""

from __future__ import annotations

from robyn import QueryParams

PAIRS = [("tag", "a"), ("page", "2"), ("tag", "b"), ("empty", "")]


def test_get_answers_the_last_value_of_a_key_or_the_default() -> None:
    query = QueryParams(PAIRS)
    assert query.get("tag") == "b"
    assert query.get("page") == "2"
    assert query.get("empty") == ""
    assert query.get("missing") is None
    assert query.get("missing", "fallback") == "fallback"
    assert query.get("tag", "fallback") == "b"


def test_get_first_and_get_all_reach_the_other_values() -> None:
    query = QueryParams(PAIRS)
    assert query.get_first("tag") == "a"
    assert query.get_all("tag") == ["a", "b"]
    assert query.get_first("missing") is None
    assert query.get_all("missing") is None


def test_get_all_and_to_dict_hand_out_copies() -> None:
    query = QueryParams(PAIRS)
    values = query.get_all("tag")
    assert values is not None
    values.append("changed")
    query.to_dict()["tag"].append("changed")
    assert query.get_all("tag") == ["a", "b"]


def test_set_adds_a_value_after_the_others() -> None:
    query = QueryParams(PAIRS)
    query.set("tag", "c")
    query.set("new", "1")
    assert query.get_all("tag") == ["a", "b", "c"]
    assert query.get("tag") == "c"
    assert query.get("new") == "1"


def test_extend_appends_every_value_of_another() -> None:
    query = QueryParams([("tag", "a")])
    query.extend(QueryParams([("tag", "b"), ("page", "1")]))
    assert query.to_dict() == {"tag": ["a", "b"], "page": ["1"]}


def test_membership_size_and_emptiness() -> None:
    query = QueryParams(PAIRS)
    assert query.contains("tag") and "tag" in query
    assert not query.contains("missing") and "missing" not in query
    assert len(query) == 3
    assert not query.empty()
    assert QueryParams().empty() and len(QueryParams()) == 0


def test_views_keep_the_keys_first_seen_order() -> None:
    query = QueryParams(PAIRS)
    assert query.keys() == ["tag", "page", "empty"]
    assert list(query) == ["tag", "page", "empty"]
    assert query.values() == ["b", "2", ""]
    assert query.items() == [("tag", "b"), ("page", "2"), ("empty", "")]
    assert query.multi_items() == [("tag", "a"), ("tag", "b"), ("page", "2"), ("empty", "")]
    assert query.to_dict() == {"tag": ["a", "b"], "page": ["2"], "empty": [""]}


def test_equality_and_repr() -> None:
    assert QueryParams(PAIRS) == QueryParams(PAIRS)
    assert QueryParams([("a", "1")]) != QueryParams([("a", "2")])
    assert QueryParams() != {}
    assert repr(QueryParams([("a", "1"), ("a", "2")])) == "QueryParams([('a', '1'), ('a', '2')])"


def test_queries_is_every_key_with_all_its_values_as_robyn_documents_it() -> None:
    query = QueryParams(PAIRS)
    assert query.queries == {"tag": ["a", "b"], "page": ["2"], "empty": [""]}
    query.queries["tag"].append("changed")
    assert query.get_all("tag") == ["a", "b"], "a copy"
