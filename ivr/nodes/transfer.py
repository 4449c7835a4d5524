"""``transfer``: hand the call to another telephone number (another service's line).

    to-ambulance:
      kind: transfer
      number: "103"
      prompts: [hotline/transferring]     # optional
      otherwise: operator                 # optional: the number did not answer

Dials ``IvrSettings.transfer_channel`` with the number; answered, the call leaves the menu.
A Dial that did not connect (busy, no answer, unavailable, congestion) never ends the call in
silence: it goes to `otherwise`, or the caller hears hotline/transfer-failed and the call ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, End, Location, Next
from ivr.nodes.common import Prompts, export_variables, play

# What the caller hears when the number did not answer and the node has no `otherwise`.
FAILED_PROMPT = "hotline/transfer-failed"


@dataclass(frozen=True)
class TransferNode:
    kind: ClassVar[str] = "transfer"
    id: str
    at: Location
    number: str
    files: Prompts
    otherwise: tuple[str, Location] | None = None

    def targets(self) -> Iterable[tuple[str, Location]]:
        return () if self.otherwise is None else (self.otherwise,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return self.files if self.otherwise else (*self.files, (FAILED_PROMPT, self.at))

    async def run(self, call: Call) -> Next:
        await play(call, self.files)
        await export_variables(call)
        target = call.services.transfer_channel.format(number=self.number)
        await call.channel.exec("Dial", target, "60")
        dial_status = await call.channel.get_variable("DIALSTATUS")
        outcome = f"transfer {(dial_status or 'unknown').lower()}"
        call.note("transfer", f"{self.number}: {outcome}")
        if dial_status == "ANSWER":
            return End("transfer", self.number, outcome)
        if self.otherwise is not None:
            return self.otherwise[0]
        await play(call, ((FAILED_PROMPT, self.at),))
        return End("transfer", self.number, outcome)


def parse(node_id: str, fields: Fields) -> TransferNode:
    number = fields.text("number")
    if not number.isdigit():
        raise fields.error("number", f"'{number}' is not a telephone number")
    return TransferNode(
        id=node_id,
        at=fields.at,
        number=number,
        files=fields.prompts("prompts", required=False),
        otherwise=fields.optional_target("otherwise"),
    )
