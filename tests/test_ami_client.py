"""AmiClient over real sockets, against a server replaying real Asterisk 22 transcripts."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from ami_replay import (
    TO_ASTERISK,
    TO_CLIENT,
    ReplayServer,
    login_only,
    mask_action_ids,
    until,
)
from prometheus_client import REGISTRY
from transcripts import Block, load, stream

from hotline.ami.client import AmiClient
from hotline.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionError,
    AmiLinkLost,
    AmiTimeout,
)
from hotline.ami.protocol import AmiMessage, AmiParser, AmiProtocolError, Greeting

USER, SECRET = "ivr", "ivrsecret"
VERSION = "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-24 23:26:57 UTC"
FAST_RECONNECT = {"reconnect_min": 0.01, "reconnect_max": 0.05}


def make_client(
    server: ReplayServer, secret: str = SECRET, *, fast: bool = False, **options: float
) -> AmiClient:
    """A client for the replay server, logging in with the plain secret as the transcripts
    were recorded; ``fast`` makes its reconnect back-off tiny."""
    if fast:
        options = FAST_RECONNECT | options
    return AmiClient("127.0.0.1", server.port, USER, secret, login="plain", **options)


def parse(data: bytes, *, expect_greeting: bool = False) -> list[AmiMessage]:
    items = AmiParser(expect_greeting=expect_greeting).feed(data)
    return [m for m in items if isinstance(m, AmiMessage)]


def masked(message: AmiMessage) -> tuple[tuple[str, str], ...]:
    return tuple((k, "*" if k == "ActionID" else v) for k, v in message.headers)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def idle_server() -> AsyncIterator[ReplayServer]:
    """Greets, accepts the login, then keeps the link up answering only pings."""
    async with ReplayServer(login_only(load("ami-actions.txt"))) as server:
        yield server


@pytest.fixture
async def started(idle_server: ReplayServer) -> AsyncIterator[AmiClient]:
    client = make_client(idle_server, action_timeout=2.0, fast=True)
    client.start()
    async with asyncio.timeout(10):
        await client.wait_connected()
    yield client
    await client.close()


# --- the actions transcript, action by action ---------------------------------------------


async def test_actions_transcript_replayed() -> None:
    blocks = load("ami-actions.txt")
    async with ReplayServer(blocks) as server:
        client = make_client(server)
        events: list[AmiMessage] = []
        client.on("*", events.append)
        await client.connect()
        assert client.connected

        pong = await client.action("Ping")
        assert pong["Ping"] == "Pong"
        assert await client.command("core show version") == [VERSION]

        with pytest.raises(AmiActionError) as unknown:
            await client.action("FooBar")
        assert unknown.value.message.startswith("Invalid/unknown command: FooBar.")
        await until(lambda: "RequestBadFormat" in [e.name for e in events])

        summary = await client.action("QueueSummary")
        assert summary.text == "Queue summary will follow"
        assert [e.name for e in summary.events] == ["QueueSummary"]
        assert summary.events[0]["LoggedIn"] == "2"
        assert summary.complete is not None
        assert summary.complete["ListItems"] == "1"

        status = await client.action("QueueStatus")
        assert [e.name for e in status.events] == ["QueueParams", "QueueMember", "QueueMember"]
        assert [e.get("Name") for e in status.events[1:]] == ["Agent One", "Agent Two"]
        assert status.complete is not None
        assert status.complete.name == "QueueStatusComplete"
        assert status.complete["ListItems"] == "3"

        channels = await client.action("CoreShowChannels")
        assert channels.events == ()
        assert channels.complete is not None
        assert channels.complete["ListItems"] == "0"

        member = {"Queue": "info", "Interface": "Local/agent3@agents/n"}
        added = await client.action("QueueAdd", member, MemberName="Agent Three", Penalty=1)
        assert added.text == "Added interface to queue"
        paused = await client.action("QueuePause", member, Paused=True, Reason="lunch")
        assert paused.text == "Interface paused successfully"
        unpaused = await client.action("QueuePause", list(member.items()), Paused=False)
        assert unpaused.text == "Interface unpaused successfully"
        removed = await client.action("QueueRemove", member)
        assert removed.text == "Removed interface from queue"
        with pytest.raises(AmiActionError, match="Not there") as again:
            await client.action("QueueRemove", member)
        assert again.value.message == "Unable to remove interface: Not there"
        assert client.connected

        await client.close()  # sends Logoff; Asterisk says goodbye and hangs up
        assert not client.connected
        await until(lambda: server.received("Logoff"))

    # What the client wrote is what the real client wrote, ActionIDs aside.
    sent = bytes(server.sessions[0].raw)
    assert mask_action_ids(sent) == mask_action_ids(stream(blocks, TO_ASTERISK))
    ids = [m.action_id for m in parse(sent)]
    assert len(set(ids)) == len(ids)
    # Events outside any reply were dispatched, in order; list items were not.
    assert [e.name for e in events] == [
        "FullyBooted",
        "SuccessfulAuth",
        "RequestBadFormat",
        "QueueMemberAdded",
        "DeviceStateChange",
        "QueueMemberPause",
        "DeviceStateChange",
        "QueueMemberPause",
        "QueueMemberRemoved",
    ]


async def test_login_reply_and_fully_booted_in_one_read_both_arrive() -> None:
    async with ReplayServer(load("ami-actions.txt")) as server:
        client = make_client(server)
        booted: list[AmiMessage] = []
        client.on("FullyBooted", booted.append)
        await client.connect()
        await until(lambda: len(booted) == 1)
        assert booted[0]["Status"] == "Fully Booted"
        await client.close()


# --- login failures -----------------------------------------------------------------------


async def test_wrong_secret_raises_auth_error() -> None:
    blocks = load("ami-login-bad-secret.txt")
    async with ReplayServer(blocks) as server:
        client = make_client(server, secret="wrong")
        with pytest.raises(AmiAuthError) as refused:
            await client.connect()
        assert str(refused.value) == (
            f"AMI login refused for user ivr at 127.0.0.1:{server.port}: wrong username or secret"
        )
        assert not client.connected
        assert mask_action_ids(bytes(server.sessions[0].raw)) == mask_action_ids(
            stream(blocks, TO_ASTERISK)
        )
        await client.close()


async def test_wrong_secret_under_start_gives_up_instead_of_retrying_forever() -> None:
    async with ReplayServer(load("ami-login-bad-secret.txt")) as server:
        client = make_client(server, secret="wrong", fast=True)
        client.start()
        with pytest.raises(AmiAuthError, match="wrong username or secret"):
            async with asyncio.timeout(10):
                await client.wait_connected()
        attempts = len(server.sessions)
        assert attempts == 3
        await asyncio.sleep(0.2)  # several back-offs' worth: nothing more may arrive
        assert len(server.sessions) == attempts
        await client.close()


async def test_connection_refused_raises_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    client = AmiClient("127.0.0.1", port, USER, SECRET)
    with pytest.raises(AmiConnectionError, match=f"127.0.0.1:{port}") as refused:
        await client.connect()
    assert not isinstance(refused.value, AmiAuthError)


async def test_a_server_that_is_not_asterisk_is_refused() -> None:
    blocks = load("ami-actions.txt")
    not_ami = [Block(TO_CLIENT, 0.0, b"SSH-2.0-OpenSSH_9.2\r\n"), *blocks[1:]]
    async with ReplayServer(not_ami) as server:
        client = make_client(server)
        with pytest.raises(AmiConnectionError, match="greeting") as refused:
            await client.connect()
        assert not isinstance(refused.value, AmiAuthError)


# --- events -------------------------------------------------------------------------------


def list_action_ids(blocks: list[Block]) -> set[str]:
    """ActionIDs whose reply opened an event list: their events are the reply, not news."""
    return {
        m.action_id or ""
        for m in parse(stream(blocks, TO_CLIENT), expect_greeting=True)
        if m.kind == "response" and (m.get("EventList") or "").lower() == "start"
    }


async def drive(client: AmiClient, blocks: list[Block]) -> None:
    """Send the transcript's actions after Login, as the recorded client did, keeping its
    ActionIDs (so events such as OriginateResponse can be matched by the caller)."""
    for action in parse(stream(blocks, TO_ASTERISK))[1:]:
        headers = [(k, v) for k, v in action.headers if k != "Action"]
        try:
            await client.action(action.name, headers)
        except AmiActionError:
            pass


@pytest.mark.parametrize(
    ("name", "caller"),
    [("ami-ivr-call.txt", "Иванов Иван"), ("ami-queue-call.txt", "Петров Пётр")],
)
async def test_events_dispatched_by_name_one_byte_per_write(
    name: str, caller: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = record_reads(monkeypatch)
    blocks = load(name)
    replies = list_action_ids(blocks)
    expected = [
        m
        for m in parse(stream(blocks, TO_CLIENT), expect_greeting=True)
        if m.kind == "event" and m.action_id not in replies
    ]
    counts = Counter(e.name for e in expected)
    by_name: dict[str, list[AmiMessage]] = {n: [] for n in counts}
    everything: list[AmiMessage] = []
    async with ReplayServer(blocks, chunk_size=1) as server:
        client = make_client(server)
        for event_name, bucket in by_name.items():
            client.on(event_name, bucket.append)
        client.on("*", everything.append)
        await client.connect()
        await drive(client, blocks)
        await until(lambda: not client.connected)  # the transcript ends with Asterisk's EOF
        await client.close()
        sent = bytes(server.sessions[0].raw)

    assert {n: len(b) for n, b in by_name.items()} == counts
    assert [masked(e) for e in everything] == [masked(e) for e in expected]
    assert caller in {e.get("CallerIDName") for e in everything}
    assert not any("\ufffd" in v for e in everything for _, v in e.headers)
    originated = [e for e in everything if e.name == "OriginateResponse"]
    assert originated
    assert all(e.action_id and e.action_id.startswith("orig-") for e in originated)
    assert mask_action_ids(sent) == mask_action_ids(stream(blocks, TO_ASTERISK))
    assert any(not decodes(chunk) for chunk in reads), "no read split a UTF-8 character"


def record_reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every chunk handed to an AmiParser, to prove the reads really did split characters."""
    reads: list[bytes] = []
    feed = AmiParser.feed

    def recording_feed(parser: AmiParser, data: bytes) -> list[AmiMessage | Greeting]:
        reads.append(data)
        return feed(parser, data)

    monkeypatch.setattr(AmiParser, "feed", recording_feed)
    return reads


def decodes(chunk: bytes) -> bool:
    try:
        chunk.decode()
    except UnicodeDecodeError:
        return False
    return True


async def test_sync_and_async_callbacks_and_off() -> None:
    async with ReplayServer(load("ami-actions.txt")) as server:
        client = make_client(server)
        sync_seen: list[str] = []
        async_seen: list[str] = []
        removed: list[str] = []

        async def on_async(event: AmiMessage) -> None:
            await asyncio.sleep(0)
            async_seen.append(event.name)

        def on_removed(event: AmiMessage) -> None:
            removed.append(event.name)

        client.on("fullybooted", lambda e: sync_seen.append(e.name))  # names match any case
        client.on("SuccessfulAuth", on_async)
        client.on("FullyBooted", on_removed)
        client.off("FullyBooted", on_removed)
        client.off("NeverRegistered", on_removed)
        await client.connect()
        await until(lambda: sync_seen == ["FullyBooted"] and async_seen == ["SuccessfulAuth"])
        assert removed == []
        await client.close()


async def test_failing_callbacks_are_logged_and_the_link_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ReplayServer(load("ami-actions.txt")) as server:
        client = make_client(server)
        later: list[str] = []

        def broken(event: AmiMessage) -> None:
            raise RuntimeError("handler bug")

        async def broken_async(event: AmiMessage) -> None:
            raise RuntimeError("async handler bug")

        client.on("FullyBooted", broken)
        client.on("SuccessfulAuth", broken_async)
        client.on("SuccessfulAuth", lambda e: later.append(e.name))
        with caplog.at_level(logging.ERROR, logger="hotline.ami.client"):
            await client.connect()
            await until(lambda: len(caplog.records) == 2)
        assert later == ["SuccessfulAuth"]
        assert client.connected
        assert (await client.action("Ping"))["Ping"] == "Pong"
        assert {r.exc_info[1].args[0] for r in caplog.records if r.exc_info and r.exc_info[1]} == {
            "handler bug",
            "async handler bug",
        }
        await client.close()


# --- actions on an idle link --------------------------------------------------------------


async def test_unanswered_action_times_out_and_the_link_stays(
    idle_server: ReplayServer, started: AmiClient
) -> None:
    before = metric("hotline_ami_actions_total", result="timeout")
    with pytest.raises(AmiTimeout, match="QueueStatus"):
        await started.action("QueueStatus", reply_timeout=0.05)
    assert metric("hotline_ami_actions_total", result="timeout") == before + 1
    assert started.connected
    assert (await started.action("Ping"))["Ping"] == "Pong"


async def test_header_injection_is_refused_before_sending(
    idle_server: ReplayServer, started: AmiClient
) -> None:
    with pytest.raises(AmiProtocolError):
        await started.command("core show version\r\nAction: Originate")
    assert (await started.action("Ping"))["Ping"] == "Pong"
    assert "Command" not in idle_server.sessions[0].actions()


async def test_action_while_down_fails_at_once() -> None:
    client = AmiClient("127.0.0.1", 1, USER, SECRET)
    with pytest.raises(AmiLinkLost, match="not sent"):
        await client.action("Ping")


async def test_caller_chosen_action_id_is_used(
    idle_server: ReplayServer, started: AmiClient
) -> None:
    pong = await started.action("Ping", ActionID="mine-1")
    assert pong.action_id == "mine-1"


# --- losing the link ----------------------------------------------------------------------


async def test_link_drop_fails_pending_action_then_reconnects_and_resyncs(
    idle_server: ReplayServer,
) -> None:
    resyncs: list[bool] = []

    async def resync() -> None:
        resyncs.append(client.connected)

    client = make_client(idle_server, fast=True)
    client.on_connected(resync)
    reconnects = metric("hotline_ami_reconnects_total")
    client.start()
    async with asyncio.timeout(10):
        await client.wait_connected()
    await until(lambda: resyncs == [True])
    assert metric("hotline_ami_link_up") == 1

    pending = asyncio.create_task(client.action("QueueStatus"))  # never answered
    await until(lambda: idle_server.received("QueueStatus"))
    idle_server.drop()
    with pytest.raises(AmiLinkLost):
        await pending

    await until(lambda: len(resyncs) == 2)
    assert client.connected
    assert resyncs == [True, True]
    assert [s.actions()[0] for s in idle_server.sessions] == ["Login", "Login"]
    assert metric("hotline_ami_reconnects_total") == reconnects + 2
    assert metric("hotline_ami_link_up") == 1
    assert (await client.action("Ping"))["Ping"] == "Pong"
    await client.close()
    assert metric("hotline_ami_link_up") == 0


async def test_reset_link_is_reconnected(idle_server: ReplayServer, started: AmiClient) -> None:
    idle_server.drop(reset=True)
    await until(lambda: len(idle_server.sessions) == 2 and started.connected)


async def test_unanswered_ping_marks_link_dead_and_reconnects(
    idle_server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(idle_server, ping_interval=0.1, action_timeout=0.3, fast=True)
    with caplog.at_level(logging.WARNING, logger="hotline.ami.client"):
        client.start()
        await until(lambda: idle_server.received("Ping", session=0))
        await until(lambda: client.connected)
        idle_server.answer_pings = False  # the socket stays open, Asterisk just goes quiet
        await until(lambda: len(idle_server.sessions) == 2)
        idle_server.answer_pings = True
        await until(lambda: client.connected)
    assert idle_server.sessions[0].client_closed  # the client hung up, not the server
    assert any("Ping not answered" in r.getMessage() for r in caplog.records)
    await client.close()


async def test_close_during_backoff_cancels_the_reconnect(idle_server: ReplayServer) -> None:
    client = make_client(idle_server, reconnect_min=0.3, reconnect_max=0.3)
    client.start()
    async with asyncio.timeout(10):
        await client.wait_connected()
    idle_server.drop()
    await until(lambda: not client.connected)  # now waiting out its back-off
    await client.close()
    assert len(idle_server.sessions) == 1
    await asyncio.sleep(0.8)  # over twice the back-off: no attempt may reach the server
    assert len(idle_server.sessions) == 1
    with pytest.raises(AmiConnectionError, match="closed"):
        await client.wait_connected()
    with pytest.raises(AmiConnectionError, match="closed"):
        await client.connect()


async def test_close_while_server_is_unreachable_stops_retrying() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AmiClient("127.0.0.1", port, USER, SECRET, **FAST_RECONNECT)
    client.start()
    await asyncio.sleep(0.1)  # a few refused attempts
    await client.close()
    assert not client.connected


async def test_garbage_from_server_drops_and_reconnects(
    idle_server: ReplayServer, started: AmiClient, caplog: pytest.LogCaptureFixture
) -> None:
    pending = asyncio.create_task(started.action("QueueStatus"))
    await until(lambda: idle_server.received("QueueStatus"))
    with caplog.at_level(logging.WARNING, logger="hotline.ami.client"):
        idle_server.send_raw(b"\x16\x03\x01 this is not AMI\r\n\r\n")
        with pytest.raises(AmiLinkLost, match="protocol error"):
            await pending
        await until(lambda: len(idle_server.sessions) == 2 and started.connected)
    assert any("protocol error" in r.getMessage() for r in caplog.records)
    assert (await started.action("Ping"))["Ping"] == "Pong"


async def test_connect_only_client_stays_down_after_a_drop(idle_server: ReplayServer) -> None:
    client = make_client(idle_server, fast=True)
    await client.connect()
    idle_server.drop()
    await until(lambda: not client.connected)
    await asyncio.sleep(0.1)
    assert len(idle_server.sessions) == 1
    await client.close()
