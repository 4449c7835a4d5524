"""The fallback's queue members, generated from dialplans/ (routing.asterisk_files), on a real
Asterisk 22: penalties and UTF-8 names as app_queue reads them, the AMI user's QueueReload,
and a caller answered by a registered seat while the controller is down."""

from __future__ import annotations

import re
from collections.abc import Callable

from calls import eventually, place_call
from real_pbx import RealAsterisk, generate_files
from softphones import Sipp
from wire_taps import AgiTap, RecordingAmi

from routing.asterisk_files import MEMBERS_FILE, queue_members_text
from routing.groups import load_groups
from routing.operators import OperatorSpec
from routing.settings import locate


def members(shown: str) -> dict[str, tuple[str, int]]:
    """`queue show`'s members: interface -> (name, penalty); it leaves penalty 0 unsaid."""
    found = re.findall(r"^\s+(.+?) \((PJSIP/\w+)[^)]*\)(?: with penalty (\d+))?", shown, re.M)
    return {interface: (name, int(penalty or 0)) for name, interface, penalty in found}


async def test_the_generated_members_are_in_the_queues_with_their_penalties(
    asterisk: RealAsterisk,
) -> None:
    documents = members(asterisk.cli("queue show hotline-documents"))
    assert documents == {
        "PJSIP/1005": ("Смирнова Ольга", 3),
        "PJSIP/1006": ("Волков Дмитрий", 5),
        "PJSIP/1001": ("Иванова Анна", 6),
    }
    assert members(asterisk.cli("queue show hotline-emergency")) == {
        "PJSIP/1007": ("Морозова Елена", 0)
    }


async def test_names_with_asterisks_special_characters_survive_a_queue_reload_over_ami(
    asterisk: RealAsterisk, ami: RecordingAmi
) -> None:
    """The controller's AMI user (write = call,originate) may send QueueReload."""
    name = 'Тест, "О\'Нил" (смена; [1]) \\ конец'
    odd = OperatorSpec("odd", name, "PJSIP/1099", {"general": 1})
    groups = load_groups(locate("dialplans/groups.yaml"))
    (asterisk.root / "etc" / MEMBERS_FILE).write_text(
        queue_members_text(groups, [odd]), encoding="utf-8"
    )
    try:
        reply = await ami.action("QueueReload", Members="yes")
        assert reply.get("Response") == "Success", reply
        assert members(asterisk.cli("queue show hotline-general")) == {"PJSIP/1099": (name, 9)}
    finally:
        generate_files(asterisk.root / "etc")
        await ami.action("QueueReload", Members="yes")
    assert "PJSIP/1001" in members(asterisk.cli("queue show hotline-general"))


async def test_controller_down_a_generated_member_answers_the_fallback_queue(
    asterisk: RealAsterisk, tap: AgiTap, ami: RecordingAmi, phones: Callable[..., Sipp]
) -> None:
    """88002000002's fallback is hotline-documents; of its generated members only ivanova's
    seat 1001 is registered: Asterisk rings it past the unregistered better-skilled ones."""
    await tap.stop()  # nothing listens where HOTLINE_CONTROLLER points
    phone = phones("1001", hold_ms=3000)

    async def reachable() -> bool:
        return "(Not in use)" in asterisk.cli("queue show hotline-documents")

    await eventually(reachable)
    await place_call(ami, "88002000002", hold=20)
    await ami.event("VarSet", Variable="AGISTATUS", Value="FAILURE")
    await ami.event("QueueCallerJoin", Queue="hotline-documents")
    connected = await ami.event("AgentConnect", Queue="hotline-documents", within=30)
    assert connected.get("Interface") == "PJSIP/1001"
    assert connected.get("MemberName") == "Иванова Анна"

    async def acked() -> bool:
        return phone.received("ACK") >= 1

    await eventually(acked)
