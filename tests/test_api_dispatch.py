"""The compiled route table (interop.api.dispatch) and the Bundle links' query encoding (interop.api.bundles)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from interop.api import interactions as i
from interop.api.bundles import _url
from interop.api.dispatch import Dispatcher
from interop.api.routes import ROUTES

DISPATCH = Dispatcher(ROUTES)


def _route(method: str, path: str) -> tuple[object, dict[str, str], list[str]]:
    route, params, allowed = DISPATCH.match(method, path)
    return (route.interaction if route else None), params, allowed


def test_literals_win_over_parameters() -> None:
    assert _route("GET", "/metadata")[0] is i.capabilities
    assert _route("GET", "/Patient/_history")[0] is i.history_type
    assert _route("GET", "/Patient/p1/_history") == (i.history_instance, {"type": "Patient", "id": "p1"}, [])
    assert _route("GET", "/Patient/p1/_history/3")[1] == {"type": "Patient", "id": "p1", "vid": "3"}
    assert _route("POST", "/Patient/_search")[0] is i.search_post
    assert _route("POST", "/$convert-data") == (i.operation_system, {"operation": "convert-data"}, [])
    assert _route("POST", "/Patient/p1/$sync-plan")[1] == {
        "type": "Patient",
        "id": "p1",
        "operation": "sync-plan",
    }
    assert _route("GET", "")[0] is i.search_system and _route("POST", "/")[0] is i.bundle
    assert _route("GET", "/Patient/p1/")[0] is i.read


def test_head_is_get_and_wrong_methods_list_the_allowed_ones() -> None:
    assert _route("HEAD", "/Patient/p1")[0] is i.read
    assert _route("PATCH", "/Patient/p1") == (None, {}, ["GET", "PUT", "DELETE"])
    assert _route("PUT", "/Patient/p1/_history") == (None, {}, ["GET"])
    assert _route("DELETE", "/Patient/p1/$sync-plan")[2] == ["GET", "POST"]
    assert _route("GET", "/a/b/c/d/e") == (None, {}, [])
    assert _route("GET", "/Patient//x")[0] is None  # an empty id segment matches nothing


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=30)), max_size=4))
def test_links_round_trip_any_parameter(params: list[tuple[str, str]]) -> None:
    url = _url("http://h/fhir/Patient", params)
    assert parse_qsl(urlsplit(url).query, keep_blank_values=True) == params


def test_capability_interactions_are_the_route_tables() -> None:
    from interop.api.capability import SYSTEM_INTERACTIONS, TYPE_INTERACTIONS

    codes = {
        i.read: ["read"],
        i.vread: ["vread"],
        i.update: ["update"],
        i.delete: ["delete"],
        i.history_instance: ["history-instance"],
        i.history_type: ["history-type"],
        i.create: ["create"],
        i.search_type: ["search-type"],
        i.search_system: ["search-system"],
        i.history_system: ["history-system"],
        i.bundle: ["transaction", "batch"],
    }
    routed = {code for route in ROUTES for code in codes.get(route.interaction, [])}
    assert routed == set(TYPE_INTERACTIONS) | set(SYSTEM_INTERACTIONS)
