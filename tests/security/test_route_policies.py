"""Every route of the whole controller declares who may call it, and only the allowed few are
public (issue 11: roles on every route).

The controller is started with every part that serves HTTP (the ACD with its operator,
escalation and admin APIs, callbacks, the recorder) and its routes are read off the running
application, so a route a part adds later is covered without touching this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
from controllers import (
    admin_environment,
    controller_settings,
    recorder_environment,
    started,
)
from people import staff_environment

from controller.node import Controller
from hotline.access import Policy, policy_of, routes_without_policy
from hotline.auth import Role

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"

# The routes anyone may call. Extend it (with a reason) when a public page is added: the
# accounts work adds its login and enrolment pages and their static files here.
ALLOWED_PUBLIC_ROUTES: Final = frozenset(
    {
        "GET /healthz",  # probes and load balancers carry no credentials
        "GET /metrics",  # public because the test controller listens on 127.0.0.1 (README)
        # the way in: each login step checks its own stage, CSRF token and Origin
        "GET /login",
        "POST /login",
        "GET /login/password",
        "POST /login/password",
        "GET /login/enrol",
        "POST /login/enrol",
        "GET /login/totp",
        "POST /login/totp",
        "GET /login/recovery",
        "POST /login/recovery",
        "POST /logout",  # ends whatever session the cookie names, checks its CSRF token
        # style sheets and scripts: fixed lists of files, no data
        "GET /accounts/static/accounts.css",
        "GET /desk/static/{name}",
        "GET /backoffice/static/{name}",
        "GET /supervisor/static/{name}",
    }
)
# Routes whose policy another part of issue 11's work decides: the callbacks API stays as open
# as it was until the callbacks work gives it its policies. Empty this set at that merge.
AWAITING_THEIR_OWN_POLICY: Final[frozenset[str]] = frozenset()


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    environment, files = admin_environment(tmp_path, DIALPLANS)
    environment.pop("HOTLINE_RECORDER_ENABLED")  # every part on: the recorder too
    settings = controller_settings(
        tmp_path,
        {
            **environment,
            **recorder_environment(tmp_path / "recorder"),
            **staff_environment(tmp_path, files / "operators.yaml"),
        },
    )
    async with started(settings) as node:
        assert node.acd is not None and node.callbacks is not None
        assert node.recordings is not None
        yield node


def policies(node: Controller) -> dict[str, Policy | None]:
    """``METHOD /path`` -> the policy its handler declares (HEAD is GET's twin)."""
    found = {}
    for route in node.app.router.routes():
        if route.method != "HEAD" and route.resource is not None:
            found[f"{route.method} {route.resource.canonical}"] = policy_of(route.handler)
    return found


async def test_every_route_of_the_controller_declares_a_policy(controller: Controller) -> None:
    assert routes_without_policy(controller.app) == []
    # the enumeration sees every part's routes, not just the core's
    paths = {route.split(" ", 1)[1] for route in policies(controller)}
    for expected in (
        "/healthz",
        "/api/operators/{op_id}/login",
        "/api/operators/{op_id}/escalate",
        "/api/groups/{id}",
        "/recordings/{id}/audio",
        "/api/callbacks",
    ):
        assert expected in paths, expected


async def test_only_the_allowed_routes_are_public(controller: Controller) -> None:
    public = {route for route, policy in policies(controller).items() if policy and policy.public}
    assert public == ALLOWED_PUBLIC_ROUTES | AWAITING_THEIR_OWN_POLICY


async def test_who_may_reach_the_operator_and_admin_routes(controller: Controller) -> None:
    found = policies(controller)
    acting = frozenset({Role.OPERATOR, Role.SUPERVISOR})
    for action in ("login", "ready", "pause", "wrap-up-done", "logout", "escalate"):
        policy = found[f"POST /api/operators/{{op_id}}/{action}"]
        assert policy is not None and (policy.roles, policy.scopes) == (acting, frozenset())
    editors = frozenset({Role.ADMIN, Role.SUPERVISOR})
    admin_routes = [r for r in found if r.split(" ")[1].startswith(("/api/groups", "/api/sched"))]
    admin_routes += ["PUT /api/operators/{id}", "DELETE /api/operators/{id}"]
    for route in admin_routes:
        policy = found[route]
        assert policy is not None and (policy.roles, policy.scopes) == (editors, frozenset())
    # recordings: any staff member reaches them; the recorder's own table decides further
    for route in (r for r in found if " /recordings" in r):
        policy = found[route]
        assert policy is not None and not policy.public and not policy.scopes


async def test_who_may_reach_the_wallboard_and_listen(controller: Controller) -> None:
    found = policies(controller)
    viewers = frozenset({Role.SUPERVISOR, Role.ADMIN})
    for route in ("GET /supervisor/wallboard", "GET /supervisor/wallboard/events"):
        policy = found[route]
        assert policy is not None and (policy.roles, policy.scopes) == (viewers, frozenset())
    for mode in ("listen", "whisper", "barge"):
        policy = found[f"POST /api/supervisor/calls/{{call_id}}/{mode}"]
        assert policy is not None
        assert (policy.roles, policy.scopes) == (frozenset({Role.SUPERVISOR}), frozenset())
