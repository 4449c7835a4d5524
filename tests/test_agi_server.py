"""FastAgiServer over real sockets: routing, limits, hostile peers, failures, shutdown.

Every hostile-input test also shows that the damage stays on one connection: another call,
made at the same time, still completes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest
from agi_peer import AsteriskPeer, Outcomes, env_bytes, eventually, metric, serving

from hotline.agi.connection import MAX_ENV_LINES
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer, install_signal_handlers
from hotline.agi.session import AgiSession, CallerHungUp


async def answer_and_return(session: AgiSession) -> None:
    await session.answer()


async def a_good_call(server: FastAgiServer, uniqueid: str = "2.2") -> None:
    """One complete call on another connection: ANSWER, 200, the server closes."""
    peer = await AsteriskPeer.connect(server.port, env_bytes(uniqueid=uniqueid))
    assert await peer.command() == "ANSWER"
    await peer.reply("200 result=0")
    await peer.expect_eof()
    await peer.close()


# --- routing -------------------------------------------------------------------------------------


async def test_routes_on_the_script_with_the_query_string_split_off() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    async def hotline(session: AgiSession) -> None:
        seen.append((session.request.script, dict(session.request.query)))

    async def other(session: AgiSession) -> None:
        seen.append(("other", {}))

    async with serving({"hotline": hotline, "other": other}) as server:
        peer = await AsteriskPeer.connect(server.port)  # hotline?did=88001000001
        await peer.expect_eof()
        no_network_script = env_bytes(network_script="<drop>", request="agi://127.0.0.1/other?x=1")
        peer = await AsteriskPeer.connect(server.port, no_network_script)
        await peer.expect_eof()

    assert seen == [("hotline", {"did": "88001000001"}), ("other", {})]


async def test_each_call_gets_its_own_script_query_and_arguments() -> None:
    """Requests are remembered by script (one parse serves the day's calls to a number): a
    call still sees its own query and its own arguments, and cannot change another's."""
    seen: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
    refused: list[str] = []

    async def hotline(session: AgiSession) -> None:
        request = session.request
        seen.append((request.script, dict(request.query), request.args))
        try:
            request.query["did"] = "tampered"  # type: ignore[index]
        except TypeError as exc:
            refused.append(type(exc).__name__)

    calls = [
        env_bytes(network_script="hotline?did=88001000001", uniqueid="1.1"),
        env_bytes(network_script="hotline?did=88002000002", uniqueid="1.2"),
        env_bytes(network_script="hotline?did=88001000001", uniqueid="1.3"),
        env_bytes(network_script="hotline?did=88001000001", uniqueid="1.4", arg_1="resume"),
        env_bytes(network_script="hotline?did=88001000001", uniqueid="1.5", arg_1="again"),
    ]
    async with serving({"hotline": hotline}) as server:
        for env in calls:
            peer = await AsteriskPeer.connect(server.port, env)
            await peer.expect_eof()
            await peer.close()

    first, second = {"did": "88001000001"}, {"did": "88002000002"}
    assert seen == [
        ("hotline", first, ()),
        ("hotline", second, ()),
        ("hotline", first, ()),
        ("hotline", first, ("resume",)),
        ("hotline", first, ("again",)),
    ]
    assert refused == ["TypeError"] * 5  # read-only: what one call sees, the next sees too


async def test_each_call_sees_its_own_environment_and_the_server_keeps_no_caller_data() -> None:
    """A call sees exactly the environment it sent, whichever lines an earlier call shared
    or changed, and no caller's number or name stays in the server's caches."""
    seen: list[dict[str, str]] = []

    async def hotline(session: AgiSession) -> None:
        seen.append(dict(session.env))

    calls = [
        env_bytes(uniqueid="1795560001.1", callerid="79160000001", context="from-pstn"),
        env_bytes(uniqueid="1795560002.1", callerid="79160000002", context="from-pstn"),
        env_bytes(uniqueid="1795560003.1", callerid="79160000003", context="from-sip", dnid="1"),
        env_bytes(uniqueid="1795560004.1", callerid="79160000001", context="from-pstn", dnid=""),
    ]
    async with serving({"hotline": hotline}) as server:
        for env in calls:
            peer = await AsteriskPeer.connect(server.port, env)
            await peer.expect_eof()
            await peer.close()
        remembered = repr(vars(server))

    lines = [env.decode().splitlines() for env in calls]
    assert seen == [dict(line.split(": ", 1) for line in call if line) for call in lines]
    contexts = [env["agi_context"] for env in seen]
    assert contexts == ["from-pstn", "from-pstn", "from-sip", "from-pstn"]
    for private in ("7916000000", seen[0]["agi_calleridname"], "179556000"):
        assert private not in remembered


async def test_unknown_script_is_closed_at_once(agi_logs: pytest.LogCaptureFixture) -> None:
    outcomes = Outcomes()
    async with serving({"hotline": answer_and_return}) as server:
        peer = await AsteriskPeer.connect(
            server.port, env_bytes(network_script="nosuch?did=1", uniqueid="9.9")
        )
        # no command: Asterisk goes on with AGISTATUS=SUCCESS and HOTLINE_DID empty, which
        # the dialplan's second guard sends to [controller-down]
        # (tests/data/asterisk/ami-agi-server-closes-after-environment.txt)
        await peer.expect_eof()
        await a_good_call(server)
    assert outcomes.changed() == {"rejected": 1, "completed": 1}
    [warning] = [r for r in agi_logs.records if "no handler" in r.getMessage()]
    assert "nosuch" in warning.getMessage() and getattr(warning, "call_id", None) == "9.9"


def test_router_refuses_empty_and_duplicate_scripts() -> None:
    router = Router()
    router.add("/hotline/", answer_and_return)
    assert router.scripts == ["hotline"]
    assert router.resolve("hotline") is answer_and_return
    for bad in ["hotline", "", "/", "x?y=1"]:
        with pytest.raises(ValueError):
            router.add(bad, answer_and_return)


# --- hostile input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xfe\xfd\n\n",  # not UTF-8
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not AGI
        b"agi_network: yes\n\x00\x01\x02\n\n",  # AGI, then binary
        b"\n\n\n\n",  # an empty environment: no script
        # A name Asterisk never sends, among those it does, is still checked...
        b"agi_network_script: hotline\nAGI_LANGUAGE: ru\nagi_uniqueid: 1.1\n\n",
        # ...and so is a name Asterisk sends, on a line that is not ``name: value``.
        b"agi_network_script: hotline\nagi_network\nagi_uniqueid: 1.1\n\n",
    ],
)
async def test_garbage_closes_that_connection_only(garbage: bytes) -> None:
    outcomes = Outcomes()
    async with serving({"hotline": answer_and_return}) as server:
        peer = await AsteriskPeer.connect(server.port, garbage)
        await peer.expect_eof()
        await a_good_call(server)
    changed = outcomes.changed()
    assert changed.pop("completed") == 1
    assert sum(changed.values()) == 1 and set(changed) <= {"protocol_error", "rejected"}


async def test_an_oversize_line_closes_the_connection() -> None:
    outcomes = Outcomes()
    async with serving({"hotline": answer_and_return}, max_line_bytes=256) as server:
        # No line break at all: the limit must trigger before the line ends.
        peer = await AsteriskPeer.connect(server.port, b"agi_network_script: " + b"x" * 300)
        await peer.expect_eof()
        # A complete environment with one line over the limit.
        peer = await AsteriskPeer.connect(server.port, env_bytes(calleridname="Я" * 200))
        await peer.expect_eof()
        await a_good_call(server)
    assert outcomes.changed() == {"protocol_error": 2, "completed": 1}


async def test_an_oversize_reply_ends_the_call() -> None:
    outcomes = Outcomes()
    errors: list[Exception] = []

    async def hotline(session: AgiSession) -> None:
        try:
            await session.get_variable("X")
        except Exception as exc:
            errors.append(exc)
            raise

    async with serving({"hotline": hotline}, max_line_bytes=256) as server:
        peer = await AsteriskPeer.connect(server.port)
        await peer.command()
        await peer.send(b"200 result=1 (" + b"x" * 1000)
        await peer.expect_eof()
    assert [type(e).__name__ for e in errors] == ["AgiProtocolError"]
    assert outcomes.changed() == {"protocol_error": 1}


async def test_too_many_environment_variables() -> None:
    env = b"".join(f"agi_arg_{n}: x\n".encode() for n in range(1, MAX_ENV_LINES + 2)) + b"\n"
    async with serving({"hotline": answer_and_return}) as server:
        peer = await AsteriskPeer.connect(server.port, env)
        await peer.expect_eof()


async def test_disconnect_mid_environment_leaves_the_server_serving(
    agi_logs: pytest.LogCaptureFixture,
) -> None:
    """panoramisk spins the loop at 100 % CPU here, so no other call gets through."""
    outcomes = Outcomes()
    async with serving({"hotline": answer_and_return}) as server:
        other = await AsteriskPeer.connect(server.port, env_bytes(uniqueid="3.3"))
        half = env_bytes()[:200]
        quitter = await AsteriskPeer.connect(server.port, half)
        await quitter.close()
        await eventually(lambda: outcomes.changed().get("protocol_error"))
        # The call that was already there, and a new one, both complete.
        assert await other.command() == "ANSWER"
        await other.reply("200 result=0")
        await other.expect_eof()
        await a_good_call(server)
    assert outcomes.changed() == {"protocol_error": 1, "completed": 2}
    assert any("middle of the AGI environment" in r.getMessage() for r in agi_logs.records)


async def test_a_slow_environment_is_cut_at_the_env_timeout() -> None:
    outcomes = Outcomes()
    async with serving({"hotline": answer_and_return}, env_timeout=0.2) as server:
        slow = await AsteriskPeer.connect(server.port, env_bytes()[:100])
        await slow.expect_eof()
        await a_good_call(server)
    assert outcomes.changed() == {"idle_timeout": 1, "completed": 1}


async def test_over_max_sessions_is_closed_at_once() -> None:
    release = asyncio.Event()
    outcomes = Outcomes()

    async def hold(session: AgiSession) -> None:
        await session.answer()
        await release.wait()

    async with serving({"hotline": hold}, max_sessions=1) as server:
        first = await AsteriskPeer.connect(server.port)
        assert await first.command() == "ANSWER"
        await first.reply("200 result=0")
        refused = await AsteriskPeer.connect(server.port)
        await refused.expect_eof()  # Asterisk falls back in the dialplan
        assert server.in_progress == 1
        release.set()
        await first.expect_eof()
        await eventually(lambda: server.in_progress == 0)
        again = await AsteriskPeer.connect(server.port)  # room again
        assert await again.command() == "ANSWER"
        await again.reply("200 result=0")
        release.set()
        await again.expect_eof()
    assert outcomes.changed() == {"rejected": 1, "completed": 2}


# --- failures in handlers ------------------------------------------------------------------------


async def test_a_handler_exception_is_logged_with_the_call_id_and_ends_only_that_call(
    agi_logs: pytest.LogCaptureFixture,
) -> None:
    outcomes = Outcomes()

    async def broken(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("database is down")

    async with serving({"hotline": broken, "other": answer_and_return}) as server:
        peer = await AsteriskPeer.connect(server.port, env_bytes(uniqueid="4.4"))
        await peer.command()
        await peer.reply("200 result=0")
        await peer.expect_eof()
        good = env_bytes(uniqueid="5.5", network_script="other")
        other = await AsteriskPeer.connect(server.port, good)
        await other.command()
        await other.reply("200 result=0")
        await other.expect_eof()

    assert outcomes.changed() == {"handler_error": 1, "completed": 1}
    [failure] = [r for r in agi_logs.records if r.exc_info]
    assert failure.levelno == logging.ERROR
    assert getattr(failure, "call_id", None) == "4.4"
    assert failure.exc_info is not None and "database is down" in str(failure.exc_info[1])


async def test_caller_hung_up_is_one_info_line_without_traceback(
    agi_logs: pytest.LogCaptureFixture,
) -> None:
    async def hotline(session: AgiSession) -> None:
        await session.stream_file("welcome")

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port, env_bytes(uniqueid="6.6"))
        await peer.command()
        await peer.send(
            b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n"
        )
        await peer.expect_eof()

    call_lines = [r for r in agi_logs.records if getattr(r, "call_id", None) == "6.6"]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in call_lines] == [
        ("INFO", "call ended")
    ]
    assert call_lines[0].exc_info is None
    assert not any(r.exc_info for r in agi_logs.records)


async def test_every_session_log_line_carries_the_call_id(
    agi_logs: pytest.LogCaptureFixture,
) -> None:
    agi_logs.set_level(logging.DEBUG, logger="hotline.agi")

    async def hotline(session: AgiSession) -> None:
        await session.answer()

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port, env_bytes(uniqueid="7.7"))
        await peer.command()
        await peer.send(b"200 result=0\nHANGUP\n")
        await peer.expect_eof()
    session_lines = [r for r in agi_logs.records if "listening" not in r.getMessage()]
    assert session_lines
    assert {getattr(r, "call_id", None) for r in session_lines} == {"7.7"}


# --- shutdown ------------------------------------------------------------------------------------


async def test_drain_lets_a_call_with_an_operator_finish_and_refuses_new_ones() -> None:
    """A caller in Asterisk's Dial is bridged whatever the session does: the handler is left
    to see the conversation's end (up to the drain timeout)."""
    outcomes = Outcomes()

    async def hotline(session: AgiSession) -> None:
        await session.answer()
        await session.exec("Dial", "PJSIP/1001", "15")
        await session.set_variable("HOTLINE_RESULT", "done")  # still works while draining

    async with serving({"hotline": hotline}) as server:
        port = server.port
        peer = await AsteriskPeer.connect(port)
        assert await peer.command() == "ANSWER"
        await peer.reply("200 result=0")
        assert await peer.command() == 'EXEC Dial "PJSIP/1001,15"'
        draining = asyncio.create_task(server.drain(30))
        await eventually(lambda: not server.is_serving())
        with pytest.raises(OSError):
            await AsteriskPeer.connect(port)
        assert not draining.done()
        await peer.reply("200 result=0")  # the conversation ended
        assert await peer.command() == "SET VARIABLE HOTLINE_RESULT done"
        await peer.reply("200 result=1")
        await peer.expect_eof()
        await draining
    assert outcomes.changed() == {"completed": 1}


async def test_drain_hands_a_call_in_the_menu_back_at_once() -> None:
    """SIGTERM does not wait for a caller in the menu: the handler is cancelled and the
    socket closed, so the dialplan retries the AGI on another (or the restarted) controller."""
    outcomes = Outcomes()
    cancelled, listening = asyncio.Event(), asyncio.Event()

    async def hotline(session: AgiSession) -> None:
        await session.answer()
        listening.set()
        try:
            await asyncio.Event().wait()  # the caller listens to the menu
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        assert await peer.command() == "ANSWER"
        await peer.reply("200 result=0")
        await asyncio.wait_for(listening.wait(), 5)
        await asyncio.wait_for(server.drain(30), 5)
        assert cancelled.is_set() and server.in_progress == 0
        await peer.expect_eof()
    assert outcomes.changed() == {"cancelled": 1}


async def test_drain_cancels_calls_still_running_after_the_timeout() -> None:
    outcomes = Outcomes()
    cancelled = asyncio.Event()

    async def stuck(session: AgiSession) -> None:
        await session.answer()
        try:
            await session.exec("Dial", "PJSIP/1001")  # a conversation longer than the drain
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serving({"hotline": stuck}) as server:
        peer = await AsteriskPeer.connect(server.port)
        await peer.command()
        await peer.reply("200 result=0")
        assert await peer.command() == 'EXEC Dial "PJSIP/1001"'
        half = await AsteriskPeer.connect(server.port, env_bytes()[:50])
        await eventually(lambda: server.in_progress == 2)
        await server.drain(0.2)
        assert cancelled.is_set()
        assert server.in_progress == 0
        await peer.expect_eof()
        await half.expect_closed()  # the half environment may still be unread: then a reset
    assert outcomes.changed() == {"cancelled": 2}


async def test_sigterm_drains_and_serve_forever_returns() -> None:
    async def hotline(session: AgiSession) -> None:
        await session.answer()

    router = Router()
    router.add("hotline", hotline)
    server = FastAgiServer(router, port=0)
    await server.start()
    loop = asyncio.get_running_loop()
    # SIGUSR1 stands in for SIGTERM so that a failure cannot terminate the test run.
    install_signal_handlers(server, drain_timeout=5, signals=[signal.SIGUSR1])
    try:
        serving_task = asyncio.create_task(server.serve_forever())
        await a_good_call(server)
        os.kill(os.getpid(), signal.SIGUSR1)
        async with asyncio.timeout(5):
            await serving_task
        assert not server.is_serving()
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        server.close()


async def test_close_drops_everything_at_once() -> None:
    running = asyncio.Event()

    async def stuck(session: AgiSession) -> None:
        running.set()
        await asyncio.Event().wait()

    async with serving({"hotline": stuck}) as server:
        peer = await AsteriskPeer.connect(server.port)
        await running.wait()
        server.close()
        await peer.expect_eof()
        await eventually(lambda: server.in_progress == 0)


# --- the object itself ---------------------------------------------------------------------------


async def test_ports_sockets_and_limits() -> None:
    router = Router()
    server = FastAgiServer(router, port=0)
    assert server.sockets == ()
    with pytest.raises(RuntimeError):
        _ = server.port
    await server.start()
    try:
        assert server.port > 0 and len(server.sockets) == 1
        assert server.is_serving()
        with pytest.raises(RuntimeError):
            await server.start()
    finally:
        await server.drain(0)
    for limit in ["max_line_bytes", "env_timeout", "reply_timeout", "max_sessions"]:
        with pytest.raises(ValueError):
            FastAgiServer(router, **{limit: 0})


async def test_calls_in_progress_gauge() -> None:
    release = asyncio.Event()
    before = metric("hotline_calls_in_progress")

    async def hold(session: AgiSession) -> None:
        await release.wait()

    async with serving({"hotline": hold}) as server:
        peers = [await AsteriskPeer.connect(server.port) for _ in range(3)]
        await eventually(lambda: server.in_progress == 3)
        assert metric("hotline_calls_in_progress") - before == 3
        release.set()
        for peer in peers:
            await peer.expect_eof()
        await eventually(lambda: server.in_progress == 0)
    assert metric("hotline_calls_in_progress") == before


async def test_caller_hung_up_propagating_from_nested_code_is_not_an_error() -> None:
    outcomes = Outcomes()

    async def hotline(session: AgiSession) -> None:
        raise CallerHungUp("gone before we started")

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        await peer.expect_eof()
    assert outcomes.changed() == {"hangup": 1}


def test_a_call_on_uvloop() -> None:
    """Production runs on uvloop, whose transports and timers are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")
    results: list[object] = []

    async def hotline(session: AgiSession) -> None:
        results.append(await session.get_variable("HOTLINE_TOPIC"))
        await session.stream_file("beep")

    async def main() -> None:
        async with serving({"hotline": hotline}, reply_timeout=0.2) as server:
            peer = await AsteriskPeer.connect(server.port)
            assert await peer.command() == "GET VARIABLE HOTLINE_TOPIC"
            await peer.reply("200 result=1 (регистрация и вход)")
            assert await peer.command() == 'STREAM FILE beep ""'
            await peer.expect_eof()  # no reply: the reply timeout ends the call
        assert results == ["регистрация и вход"]

    uvloop.run(main())
