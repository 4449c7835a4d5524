"""``transfer``: hand the call to another telephone number (another service's line).

    to-ambulance:
      kind: transfer
      number: "103"
      prompts: [hotline/transferring]     # optional

Dials ``IvrSettings.transfer_channel`` with the number; the call leaves the menu.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, End, Location, Next
from ivr.nodes.common import Prompts, export_variables, play


@dataclass(frozen=True)
class TransferNode:
    kind: ClassVar[str] = "transfer"
    id: str
    at: Location
    number: str
    files: Prompts

    def targets(self) -> Iterable[tuple[str, Location]]:
        return ()

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return self.files

    async def run(self, call: Call) -> Next:
        await play(call, self.files)
        await export_variables(call)
        target = call.services.transfer_channel.format(number=self.number)
        await call.channel.exec("Dial", target, "60")
        dial_status = await call.channel.get_variable("DIALSTATUS")
        outcome = f"transfer {(dial_status or 'unknown').lower()}"
        call.note("transfer", f"{self.number}: {outcome}")
        return End("transfer", self.number, outcome)


def parse(node_id: str, fields: Fields) -> TransferNode:
    number = fields.text("number")
    if not number.isdigit():
        raise fields.error("number", f"'{number}' is not a telephone number")
    return TransferNode(
        id=node_id, at=fields.at, number=number, files=fields.prompts("prompts", required=False)
    )
