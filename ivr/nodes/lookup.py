"""``lookup``: ask the application-status service, and branch on its answer.

    check-status:
      kind: lookup
      path: "/applications/${application}"
      timeout: 3            # seconds; past it the failure branch
      save_as: status       # the JSON fields become ${status_<field>}
      found: say-status
      not_found: unknown-application
      failure: operator

A 200 answer with a JSON object is `found`, 404 `not_found`; anything else (timeout, refused
connection, 5xx, garbage) is `failure`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next


@dataclass(frozen=True)
class LookupNode:
    kind: ClassVar[str] = "lookup"
    id: str
    at: Location
    path: str
    timeout: float
    save_as: str
    found: tuple[str, Location]
    not_found: tuple[str, Location]
    failure: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.found, self.not_found, self.failure)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return ()

    async def run(self, call: Call) -> Next:
        service = call.services.status
        if service is None:
            call.note("lookup", "failure (no status service configured)")
            return self.failure[0]
        path = _quoted_path(call, self.path)
        result = await service.get(path, self.timeout)
        call.note("lookup", result.outcome)
        for name, value in result.fields.items():
            call.variables[f"{self.save_as}_{name}"] = value
        if result.outcome == "found":
            return self.found[0]
        if result.outcome == "not_found":
            return self.not_found[0]
        return self.failure[0]


def _quoted_path(call: Call, template: str) -> str:
    """Variables are URL-quoted: what a caller typed cannot change the path."""
    saved = call.variables, call.system
    call.variables = {k: quote(v, safe="") for k, v in saved[0].items()}
    call.system = {k: quote(v, safe="") for k, v in saved[1].items()}
    try:
        return call.expand(template)
    finally:
        call.variables, call.system = saved


def parse(node_id: str, fields: Fields) -> LookupNode:
    path = fields.text("path")
    if not path.startswith("/"):
        raise fields.error("path", "must start with /")
    return LookupNode(
        id=node_id,
        at=fields.at,
        path=path,
        timeout=fields.number("timeout", 3.0, 0.1, 30.0),
        save_as=fields.text("save_as", "status"),
        found=fields.target("found"),
        not_found=fields.target("not_found"),
        failure=fields.target("failure"),
    )
