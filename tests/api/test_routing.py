"""Routing: resources with a variable part are tried first, and none of them takes a request
meant for a plain path; handlers that never await (`plain`) answer and refuse like the others."""

from __future__ import annotations

from aiohttp import web

from amps_sim.simulator.web.app import create_app
from amps_sim.simulator.web.common import plain, plain_function
from tests.conftest import Api


def test_no_variable_resource_matches_a_plain_path() -> None:
    app = create_app(seed=1)
    resources = [r for r in app.router.resources() if isinstance(r, web.Resource)]
    plain_paths = [r.get_info()["path"] for r in resources if isinstance(r, web.PlainResource)]
    patterns = [r.get_info()["pattern"] for r in resources if isinstance(r, web.DynamicResource)]
    assert plain_paths and patterns
    # The catch-all (`/{tail:.*}`, added last, after every plain path) answers 404s only.
    shadowing = [(path, p.pattern) for path in plain_paths for p in patterns if p.fullmatch(path) and ".*" not in p.pattern]
    assert shadowing == []


def test_plain_marks_the_function_it_wraps() -> None:
    def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def other(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    assert plain_function(plain(handler)) is handler
    assert plain_function(other) is None


async def test_plain_and_variable_paths_each_reach_their_own_handler(api: Api) -> None:
    listed = await api.call("GET", "/battery")
    assert listed.status == 200 and [d["id"] for d in listed.body["devices"]] == ["dev_fox"]
    one = await api.call("GET", "/battery/dev_fox")
    assert one.status == 200 and one.body["id"] == "dev_fox"
    pushed = await api.call("POST", "/battery/dev_fox", json_body={"action": {"command": "charge"}})
    assert pushed.status == 202
    actions = await api.call("GET", "/actions")
    assert actions.status == 200 and actions.body["total"] == 1
    action = await api.call("GET", f"/actions/{pushed.body['actionId']}")
    assert action.status == 200 and action.body["id"] == pushed.body["actionId"]


async def test_plain_handlers_refuse_in_the_envelope(api: Api) -> None:
    missing = await api.call("GET", "/actions/act_missing")
    assert missing.status == 404 and missing.body["success"] is False and missing.body["meta"]["path"] == "/actions/act_missing"
    bad_limit = await api.call("GET", "/actions?limit=0")
    assert bad_limit.status == 400 and bad_limit.code == "INVALID_REQUEST"
    not_allowed = await api.call("POST", "/battery", json_body={"action": {"command": "charge"}}, check_spec=False)
    assert not_allowed.status == 405 and not_allowed.code == "METHOD_NOT_ALLOWED"
