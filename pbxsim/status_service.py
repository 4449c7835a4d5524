"""A stand-in application-status service for the demo and the tests.

The real service belongs to the government portal; this one answers the same question from a
fixture file so menus can be tried end to end:

    GET /applications/{number} -> 200 {"number", "status", "updated_at"}
                               -> 404 {"error": "not_found", "number"} for an unknown number
                               -> 400 {"error": "bad_number"} when it is not 10 digits
    GET /healthz               -> 200 {"status": "ok", "applications": N}

Fixture (`dialplans/status-fixtures.yaml`): `applications: {number: {status, updated_at}}` with the
status in Russian. `delay` (seconds) and `fail` (HTTP code) per application let a demo show what a
caller hears when the service is slow or broken.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import yaml
from aiohttp import web

from hotline.yamldoc import Problem, YamlFileError, compose, line_of, mapping_items

DEFAULT_FIXTURES: Final = Path("dialplans/status-fixtures.yaml")
_NUMBER = re.compile(r"^\d{10}$")


@dataclass(frozen=True, slots=True)
class Application:
    """One application as the service reports it."""

    number: str
    status: str
    updated_at: str
    delay: float = 0.0
    fail: int | None = None


class FixtureError(YamlFileError):
    """A fixture file that cannot be used; lists every problem with file:line."""


def _application(
    number: str, node: yaml.Node, path: Path, problems: list[Problem]
) -> Application | None:
    def error(at: yaml.Node, message: str) -> None:
        problems.append(Problem(str(path), line_of(at), f"заявление {number}: {message}"))

    fields = {
        key: value for key, _, value in mapping_items(node, path, problems, f"заявление {number}")
    }
    values = {
        key: str(value.value) for key, value in fields.items() if isinstance(value, yaml.ScalarNode)
    }
    start = len(problems)
    if not _NUMBER.match(number):
        error(node, "номер должен состоять из 10 цифр")
    if set(fields) - {"status", "updated_at", "delay", "fail"}:
        error(node, "допустимы поля status, updated_at, delay, fail")
    if not values.get("status", "").strip():
        error(node, "нет статуса (status)")
    try:
        datetime.fromisoformat(values.get("updated_at", ""))
    except ValueError:
        error(fields.get("updated_at", node), "updated_at: нужна дата и время ISO 8601")
    try:
        delay = float(values.get("delay", "0"))
        fail = int(values["fail"]) if "fail" in values else None
    except ValueError:
        error(node, "delay — число секунд, fail — код HTTP")
        return None
    if fail is not None and not 500 <= fail <= 599:
        error(fields["fail"], "fail: код ответа 5xx")
    if len(problems) > start:
        return None
    return Application(number, values["status"].strip(), values["updated_at"], delay, fail)


def load_fixtures(path: Path) -> dict[str, Application]:
    """Applications by number from a fixture file; raises FixtureError with file:line."""
    path = Path(path)
    problems: list[Problem] = []
    applications: dict[str, Application] = {}
    root = compose(path, problems)
    if root is not None:
        for key, key_node, value in mapping_items(root, path, problems, "фикстуры"):
            if key != "applications":
                problems.append(Problem(str(path), line_of(key_node), f"неизвестный ключ «{key}»"))
                continue
            for number, _, node in mapping_items(value, path, problems, "applications"):
                application = _application(number, node, path, problems)
                if application is not None:
                    applications[number] = application
    if problems:
        raise FixtureError(problems)
    return applications


APPLICATIONS: Final = web.AppKey("applications", dict[str, Application])


async def get_application(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    if not _NUMBER.match(number):
        return web.json_response({"error": "bad_number", "number": number[:32]}, status=400)
    application = request.app[APPLICATIONS].get(number)
    if application is None:
        return web.json_response({"error": "not_found", "number": number}, status=404)
    if application.delay:
        await asyncio.sleep(application.delay)
    if application.fail is not None:
        return web.json_response({"error": "unavailable"}, status=application.fail)
    body = {"number": number, "status": application.status, "updated_at": application.updated_at}
    return web.json_response(body, dumps=_dumps)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "applications": len(request.app[APPLICATIONS])})


def make_app(applications: dict[str, Application]) -> web.Application:
    """The service as an aiohttp application (for `web.run_app`, a runner, or a test server)."""
    app = web.Application()
    app[APPLICATIONS] = applications
    app.router.add_get("/applications/{number}", get_application)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(applications: dict[str, Application], host: str, port: int) -> web.AppRunner:
    """Start the service; the caller cleans up the returned runner."""
    runner = web.AppRunner(make_app(applications), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
