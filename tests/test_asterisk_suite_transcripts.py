"""The transcripts the real-Asterisk suite captured (tests/asterisk/, see
tests/data/asterisk/README.md) through the controller's own parsers: the FastAGI environment
and replies, the AMI parser, and the softphone-registration reading of agents.devices."""

from __future__ import annotations

from transcripts import load, stream

from agents.devices import device_available
from hotline.agi.protocol import AgiRequest, iter_lines, parse_env_line, parse_reply_line
from hotline.ami.protocol import AmiMessage, AmiParser


def _environment(name: str) -> dict[str, str]:
    """The agi_* block up to its empty line, however many reads it took."""
    raw = stream(load(name), "asterisk->server")
    head = raw.split(b"\n\n", 1)[0].decode()
    return dict(parse_env_line(line) for line in head.splitlines())


def _events(name: str) -> list[AmiMessage]:
    parser = AmiParser(expect_greeting=True)
    found = parser.feed(stream(load(name), "asterisk->client"))
    return [m for m in found if isinstance(m, AmiMessage)]


def test_the_acd_dial_session_runs_dial_with_the_answer_hook() -> None:
    blocks = load("agi-acd-dial-session.txt")
    env = _environment("agi-acd-dial-session.txt")
    assert AgiRequest.from_env(env).script == "hotline"
    commands = stream(blocks, "server->asterisk").decode().splitlines()
    dial = next(c for c in commands if c.startswith("EXEC Dial"))
    assert dial.startswith('EXEC Dial "PJSIP/1007,10,gU(hotline-acd-answered^')
    replies = stream(blocks, "asterisk->server").split(b"\n\n", 1)[1]
    for line in iter_lines(replies):
        assert parse_reply_line(line).code == 200


def test_the_answer_hook_session_names_the_call_and_the_operators_channel() -> None:
    env = _environment("agi-acd-answered-session.txt")
    request = AgiRequest.from_env(env)
    assert request.script == "acd-answered" and request.query["call"]
    assert env["agi_channel"].startswith("PJSIP/1007-")
    assert env["agi_context"] == "hotline-acd-answered"


def test_an_environment_may_arrive_in_two_reads() -> None:
    blocks = load("agi-server-closes-after-environment.txt")
    assert len([b for b in blocks if b.direction == "asterisk->server" and b.data]) == 2
    env = _environment("agi-server-closes-after-environment.txt")
    assert env["agi_extension"] == "88004000004"


def test_closing_after_the_environment_leaves_agistatus_success() -> None:
    """Issue 16: no command, socket closed: Asterisk 22 sets AGISTATUS=SUCCESS (the dialplan
    still falls back, because HOTLINE_DID was never set)."""
    events = _events("ami-agi-server-closes-after-environment.txt")
    [status] = [e for e in events if e.name == "VarSet" and e.get("Variable") == "AGISTATUS"]
    assert status.get("Value") == "SUCCESS"
    joins = [e for e in events if e.name == "QueueCallerJoin"]
    assert [e.get("Queue") for e in joins] == ["hotline-social"]


def test_registration_events_read_as_phone_up_and_down() -> None:
    events = _events("ami-pjsip-registration.txt")
    seen = [device_available(e) for e in events if e.name in ("ContactStatus", "DeviceStateChange")]
    readings = [r for r in seen if r is not None and r[0] == "PJSIP/1001"]
    assert ("PJSIP/1001", True) in readings
    assert readings[-1] == ("PJSIP/1001", False)
    listing = {
        e.get("Device"): e.get("State")
        for e in events
        if e.name == "DeviceStateChange" and e.get("ActionID")
    }
    assert listing["PJSIP/1001"] == "UNAVAILABLE"
    assert any(e.name == "DeviceStateListComplete" for e in events)


def test_a_callbacks_two_legs_meet_in_one_confbridge() -> None:
    events = _events("ami-confbridge-callback.txt")
    joins = [e for e in events if e.name == "ConfbridgeJoin"]
    assert len(joins) == 2 and len({e.get("Conference") for e in joins}) == 1
    conference = joins[0].get("Conference") or ""
    assert conference.startswith("hotline-callback-")
    assert {(e.get("Channel") or "")[:6] for e in joins} == {"PJSIP/", "Local/"}
    assert any(e.name == "ConfbridgeEnd" and e.get("Conference") == conference for e in events)
