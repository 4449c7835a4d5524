"""Phone feature codes (*81..*84) through the real FastAGI server, seen from the HTTP API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agi_peer import AsteriskPeer, env_bytes, serving
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from controllers import WITHOUT_RECORDER, controller_settings, started
from people import SUPERVISOR, as_user, guarded_app, people_environment, sqlite_audit
from staff import ADMIN_CLI, staff_kit

from agents.feature_codes import FEATURE_SCRIPT, FeatureCodes, device_of_channel
from agents.http import add_operator_routes
from hotline.accounts.service import Accounts
from hotline.audit import AuditLog
from hotline.clock import ManualClock
from hotline.store.db import create_engine
from ivr.prompts import load_prompt_texts
from routing.acd import Acd
from routing.node import AcdNode
from routing.operators import InvalidTransition, OperatorState
from routing.state import InMemoryAcdStore
from routing.testing import group, op

ROOT = Path(__file__).resolve().parents[2]
ANNA = "PJSIP/anna-0000001a"


@dataclass
class Heard:
    """What the server did on one feature-code call: its commands and the variables set."""

    commands: list[str]
    variables: dict[str, str]

    @property
    def prompts(self) -> list[str]:
        return [c.split()[2] for c in self.commands if c.startswith("STREAM FILE")]


OWN_PIN = "<the operator's own PIN>"


@dataclass
class Rig:
    port: int
    node: AcdNode
    http: TestClient[web.Request, web.Application] | None = None  # the operator API
    pins: dict[str, str] = field(default_factory=dict)  # operator -> the PIN /me showed
    pins_source: Accounts | None = None
    audit: AuditLog | None = None

    async def dial(self, query: str, channel: str = ANNA, pin: str | None = OWN_PIN) -> Heard:
        """Dial a feature code (``code=...``) from `channel`, answering like Asterisk; `pin`
        is what the operator types when asked: by default the PIN the phone's operator got
        at /me, None for nothing before the timeout."""
        if pin is OWN_PIN:
            pin = self.pins.get(channel.split("/")[-1].split("-")[0])
        env = env_bytes(network_script=f"{FEATURE_SCRIPT}?{query}", channel=channel)
        peer = await AsteriskPeer.connect(self.port, env)
        commands: list[str] = []
        variables: dict[str, str] = {}
        try:
            while line := await peer.read_line():
                command = line.decode().rstrip("\n")
                commands.append(command)
                if command.startswith("SET VARIABLE"):
                    _, _, name, value = command.split(" ", 3)
                    variables[name] = value.strip('"')
                if command.startswith("GET DATA"):
                    await peer.reply(f"200 result={pin}" if pin else "200 result= (timeout)")
                    continue
                await peer.reply(_REPLIES.get(command.split(" ")[0], "200 result=0"))
        finally:
            await peer.close()
        return Heard(commands, variables)

    async def listing(self) -> dict[str, tuple[str, str | None]]:
        assert self.http is not None
        reply = await self.http.get("/api/operators")
        assert reply.status == 200
        return by_id(await reply.json())


def by_id(listing: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {row["id"]: (row["state"], row["pause_reason"]) for row in listing["operators"]}


_REPLIES = {"STREAM": "200 result=0 endpos=8000", "SET": "200 result=1", "ANSWER": "200 result=0"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    groups = {"general": group("general")}
    specs = [op("anna", general=5), op("boris", general=3)]
    node = AcdNode(Acd(groups, specs, clock=ManualClock()), InMemoryAcdStore(), node_id="n1")
    await node.start()
    app = guarded_app({SUPERVISOR: "supervisor"})  # the listing is a supervisor's
    url = f"sqlite+aiosqlite:///{tmp_path / 'accounts.sqlite3'}"
    async with staff_kit(url, tmp_path) as kit, sqlite_audit(tmp_path) as audit:
        pins = {}
        for name in ("anna", "boris"):
            await kit.accounts.add(name, "operator", name.title(), by=ADMIN_CLI)
            pins[name] = await kit.accounts.new_pin(name, by=ADMIN_CLI)
        add_operator_routes(app, node, audit)
        async with (
            TestClient(TestServer(app), headers=as_user(SUPERVISOR)) as http,
            serving({FEATURE_SCRIPT: FeatureCodes(node, kit.accounts, audit)}) as server,
        ):
            yield Rig(server.port, node, http, pins, kit.accounts, audit)


def result(heard: Heard) -> tuple[str, str, list[str]]:
    v = heard.variables
    return v["OPERATOR_FEATURE_RESULT"], v["OPERATOR_STATE"], heard.prompts


async def test_login_pause_with_reason_ready_logout(rig: Rig) -> None:
    heard = await rig.dial("code=login")
    assert heard.commands[:2] == ["ANSWER", "GET DATA hotline/operator-enter-pin 10000 12"]
    assert result(heard) == ("ok", "ready", ["hotline/operator-logged-in"])
    assert (await rig.listing())["anna"] == ("ready", None)

    heard = await rig.dial("code=pause&reason=1")
    assert result(heard) == ("ok", "paused", ["hotline/operator-paused"])
    assert (await rig.listing())["anna"] == ("paused", "обед")

    assert result(await rig.dial("code=ready")) == ("ok", "ready", ["hotline/operator-ready"])
    assert result(await rig.dial("code=pause"))[:2] == ("ok", "paused")
    assert (await rig.listing())["anna"] == ("paused", "перерыв")
    await rig.dial("code=ready")
    await rig.dial("code=pause&reason=3")
    assert (await rig.listing())["anna"] == ("paused", "обучение")

    heard = await rig.dial("code=logout")
    assert result(heard) == ("ok", "logged_out", ["hotline/operator-logged-out"])
    assert await rig.listing() == {"anna": ("logged_out", None), "boris": ("logged_out", None)}


async def test_login_needs_the_operators_own_pin(rig: Rig) -> None:
    boris_pin = rig.pins["boris"]
    for typed in ("0" * 6 if rig.pins["anna"] != "0" * 6 else "1" * 6, None, boris_pin):
        heard = await rig.dial("code=login", pin=typed)
        assert result(heard) == ("bad-pin", "logged_out", ["hotline/operator-wrong-pin"]), typed
    # a reply with a non-ASCII digit is a broken AGI reply: the session ends, nobody logged in
    heard = await rig.dial("code=login", pin="1²3")
    assert "OPERATOR_FEATURE_RESULT" not in heard.variables
    assert (await rig.listing())["anna"] == ("logged_out", None)
    # the forged-session finding: a FastAGI client naming anna's seat without her PIN got in
    assert result(await rig.dial("code=login"))[:2] == ("ok", "ready")


async def test_other_codes_ask_no_pin(rig: Rig) -> None:
    await rig.dial("code=login")
    heard = await rig.dial("code=pause", pin=None)
    assert not [c for c in heard.commands if c.startswith("GET DATA")]
    assert result(heard)[:2] == ("ok", "paused")


async def test_a_new_pin_replaces_the_old_one(rig: Rig) -> None:
    old = rig.pins["anna"]
    kit_pins = rig.pins_source
    assert kit_pins is not None
    new = await kit_pins.new_pin("anna", by=ADMIN_CLI)
    if new != old:  # one chance in a million that the new PIN is the old one
        assert result(await rig.dial("code=login", pin=old))[0] == "bad-pin"
    assert result(await rig.dial("code=login", pin=new))[0] == "ok"


async def test_guessing_pins_backs_off_even_for_the_right_one(rig: Rig) -> None:
    wrong = "0" * 6 if rig.pins["anna"] != "0" * 6 else "1" * 6
    for _ in range(4):  # 3 free failures per account and phone, then a wait
        assert result(await rig.dial("code=login", pin=wrong))[0] == "bad-pin"
    assert result(await rig.dial("code=login"))[0] == "bad-pin"
    # boris, on his own phone, is not held back by anna's guesser
    heard = await rig.dial("code=login", channel="PJSIP/boris-00000001")
    assert result(heard)[:2] == ("ok", "ready")


async def test_every_code_is_audited_and_none_is_done_unaudited(rig: Rig, tmp_path: Path) -> None:
    assert rig.audit is not None
    await rig.dial("code=login")
    await rig.dial("code=pause&reason=1")
    entries = await rig.audit.entries()
    assert [(e.user_id, e.role, e.action, e.source, e.detail_data) for e in entries] == [
        ("anna", "operator", "operator.login", "PJSIP/anna", {"operator": "anna", "via": "phone"}),
        (
            "anna",
            "operator",
            "operator.pause",
            "PJSIP/anna",
            {"operator": "anna", "via": "phone", "reason": "обед"},
        ),
    ]
    # an audit log that cannot take the entry (no tables there): the code fails, nothing moves
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/no-tables.sqlite3")
    try:
        assert rig.pins_source is not None
        codes = FeatureCodes(rig.node, rig.pins_source, AuditLog(engine))
        async with serving({FEATURE_SCRIPT: codes}) as server:
            heard = await Rig(server.port, rig.node).dial("code=ready")
    finally:
        await engine.dispose()
    assert result(heard) == ("error", "paused", ["hotline/operator-feature-failed"])
    assert rig.node.acd.operators["anna"].state is OperatorState.PAUSED


async def test_ready_by_code_gets_a_waiting_caller_offered(rig: Rig) -> None:
    await rig.dial("code=login", channel="PJSIP/boris-00000001")
    await rig.dial("code=pause&reason=2", channel="PJSIP/boris-00000002")
    await rig.node.enqueue("c1", "general")
    assert rig.node.acd.operators["boris"].state is OperatorState.PAUSED
    await rig.dial("code=ready", channel="PJSIP/boris-00000003")
    assert (await rig.listing())["boris"] == ("ringing", None)


async def test_invalid_transition_is_refused_with_the_screens_message(rig: Rig) -> None:
    heard = await rig.dial("code=pause&reason=1")
    assert result(heard) == ("refused", "logged_out", ["hotline/operator-refused-logged-out"])
    assert (await rig.listing())["anna"] == ("logged_out", None)
    await rig.dial("code=login")
    heard = await rig.dial("code=login")
    assert result(heard) == ("refused", "ready", ["hotline/operator-refused-ready"])
    await rig.node.enqueue("c1", "general")  # anna's phone rings now
    heard = await rig.dial("code=pause&reason=2")
    assert result(heard) == ("refused", "ringing", ["hotline/operator-refused-ringing"])
    assert (await rig.listing())["anna"] == ("ringing", None)


def test_every_refusal_prompt_says_the_screens_message() -> None:
    texts = load_prompt_texts(ROOT / "prompts")
    for state in OperatorState:
        refused = InvalidTransition("anna", state, state)
        prompt_id = "operator-refused-" + state.value.replace("_", "-")
        assert texts[prompt_id] == refused.message_ru, state


async def test_unknown_code_or_reason_changes_nothing(rig: Rig) -> None:
    await rig.dial("code=login")
    for query in ("code=pause&reason=9", "code=pause&reason=", "code=sleep", "", "code=login;x"):
        heard = await rig.dial(query)
        assert result(heard) == ("bad-code", "ready", ["hotline/operator-bad-code"]), query
    assert (await rig.listing())["anna"] == ("ready", None)


async def test_phone_of_no_operator_is_refused(rig: Rig) -> None:
    heard = await rig.dial("code=login", channel="PJSIP/1001-0000001a")
    assert result(heard) == ("unknown-phone", "", ["hotline/operator-not-allowed"])
    assert set((await rig.listing()).values()) == {("logged_out", None)}


@pytest.mark.parametrize(
    "channel",
    [
        "PJSIP/anna",  # no sequence number
        "PJSIP/anna-0000001a;1",
        "Local/anna@operators-0000001a;2",
        "PJSIP/anna-0000001a-0000001b",  # another device's name in front
        "PJSIP/../anna-0000001a",
        'PJSIP/anna" 1-0000001a',
        "PJSIP/анна-0000001a",
        "PJSIP/" + "a" * 5000 + "-0000001a",
        "",
        "<drop>",
    ],
)
async def test_hostile_or_odd_channel_names_log_nobody_in(rig: Rig, channel: str) -> None:
    heard = await rig.dial("code=login", channel=channel)
    assert result(heard) == ("unknown-phone", "", ["hotline/operator-not-allowed"])
    assert (await rig.listing())["anna"] == ("logged_out", None)


def test_device_of_channel() -> None:
    assert device_of_channel("PJSIP/1001-0000001a") == "PJSIP/1001"
    assert device_of_channel("PJSIP/op-1001-0000001a") == "PJSIP/op-1001"
    assert device_of_channel("SIP/1001") is None
    assert device_of_channel("PJSIP/1001-0000001a\nANSWER") is None


def _context(name: str) -> str:
    dialplan = (ROOT / "asterisk-conf" / "extensions.conf").read_text()
    return dialplan.split(f"\n[{name}]\n")[1].split("\n[")[0]


def test_dialplan_sends_each_code_to_the_controller() -> None:
    operators = _context("operators")
    codes: dict[str, Any] = dict(
        re.findall(r"exten => _?(\*8[1-4]X?),1,Gosub\(operator-feature,s,1\(([^)]*)\)\)", operators)
    )
    assert codes == {
        "*81": "login",
        "*82": "pause",
        "*82X": "pause&reason=${EXTEN:3}",
        "*83": "ready",
        "*84": "logout",
    }
    feature = _context("operator-feature")
    assert f"AGI(agi://${{HOTLINE_CONTROLLER}}/{FEATURE_SCRIPT}?code=${{ARG1}})" in feature
    assert "Playback(hotline/operator-feature-failed)" in feature


def test_every_prompt_the_codes_play_exists() -> None:
    texts = load_prompt_texts(ROOT / "prompts")
    source = (ROOT / "agents" / "feature_codes.py").read_text()
    used = set(re.findall(r'"(operator-[a-z-]*[a-z])"', source)) - {"operator-feature"}
    assert used and used <= set(texts), used - set(texts)


async def test_controller_takes_codes_from_the_shipped_operators_phones(tmp_path: Path) -> None:
    """`hotline serve` routes operator-feature; PJSIP/1001 is ivanova in dialplans/, and her
    account's PIN is what the phone asks for."""
    supervisor = people_environment(tmp_path, {SUPERVISOR: "supervisor"})
    settings = controller_settings(tmp_path, {**WITHOUT_RECORDER, **supervisor})
    async with started(settings) as controller:
        assert controller.agi is not None and controller.acd is not None
        assert controller.accounts is not None
        accounts = controller.accounts.accounts
        await accounts.add("ivanova", "operator", "Иванова Анна", by=ADMIN_CLI)
        pin = await accounts.new_pin("ivanova", by=ADMIN_CLI)
        rig = Rig(controller.agi.port, controller.acd.node, pins={"1001": pin})
        heard = await rig.dial("code=pause&reason=2", channel="PJSIP/1001-00000007")
        assert result(heard)[:2] == ("refused", "logged_out")
        heard = await rig.dial("code=login", channel="PJSIP/1001-00000008", pin=None)
        assert result(heard)[0] == "bad-pin"
        assert result(await rig.dial("code=login", channel="PJSIP/1001-00000008"))[0] == "ok"
        assert (
            result(await rig.dial("code=pause&reason=2", channel="PJSIP/1001-00000009"))[0] == "ok"
        )
        url = f"http://127.0.0.1:{controller.http_port}/api/operators"
        async with (
            aiohttp.ClientSession(headers=as_user(SUPERVISOR)) as http,
            http.get(url) as response,
        ):
            assert by_id(await response.json())["ivanova"] == ("paused", "перерыв")
