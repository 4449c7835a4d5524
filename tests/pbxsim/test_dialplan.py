"""The dialplan interpreter on the SHIPPED asterisk-conf/extensions.conf: what a call to each
number, a feature code, the ACD's U() hook and the callback legs run, with a scripted channel
standing in for the simulator's applications; the Newexten sequences of real Asterisk 22
transcripts; and the errors a broken dialplan gives (file:line, missing context, loops)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dialplan_channel import CALLER, App, ScriptedChannel, agi, sets
from transcripts import DATA, load, stream

from pbxsim.dialplan import (
    HANGUP,
    AppResult,
    DialplanError,
    DialplanInterpreter,
    DialplanLoopError,
    DialplanSyntaxError,
    ExtenAddress,
    NoSuchExtension,
    load_dialplan,
)
from pbxsim.dialplan.arguments import app_options, callee_gosub, predial_gosub

ROOT = Path(__file__).resolve().parent.parent.parent
# A controller that finished the call: tagged it and said so.
FINISHED = agi(AGISTATUS="SUCCESS", HOTLINE_DID="88001000001", HOTLINE_DONE="1")
SHIPPED = ROOT / "asterisk-conf" / "extensions.conf"


@pytest.fixture
def shipped() -> DialplanInterpreter:
    return DialplanInterpreter.from_file(SHIPPED)


# -- [from-pstn] and [controller-down] ----------------------------------------------------


async def test_a_call_the_controller_handled_ends_with_hangup(
    shipped: DialplanInterpreter,
) -> None:
    channel = ScriptedChannel(apps={"AGI": FINISHED})
    end = await shipped.run(channel, "from-pstn", "88001000001")
    assert channel.trail() == [
        ("from-pstn", "88001000001", 1, "NoOp", f"Hotline call to 88001000001 from {CALLER}"),
        ("from-pstn", "88001000001", 2, "Set", "CHANNEL(language)=ru"),
        ("from-pstn", "88001000001", 3, "Set", "HOTLINE_REENTRY=0"),
        ("from-pstn", "88001000001", 4, "Set", "HOTLINE_HOST_N=1"),
        ("from-pstn", "88001000001", 5, "Set", "HOTLINE_HOST=127.0.0.1:4573"),
        ("from-pstn", "88001000001", 6, "Set", "HOTLINE_DID="),
        ("from-pstn", "88001000001", 7, "Set", "HOTLINE_DONE="),
        (
            "from-pstn", "88001000001", 8, "AGI",
            "agi://127.0.0.1:4573/hotline?did=88001000001&reentry=0",
        ),
        (
            "from-pstn", "88001000001", 9, "NoOp",
            "Controller 127.0.0.1:4573 done: AGISTATUS=SUCCESS HOTLINE_DID=88001000001 "
            "HOTLINE_DONE=1",
        ),
        ("from-pstn", "88001000001", 10, "GotoIf", "1?done"),
        ("from-pstn", "88001000001", 23, "Hangup", ""),
    ]  # fmt: skip
    assert channel.written == [("CHANNEL", "language", "ru")]
    assert (end.reason, end.address.priority, end.cause, end.steps) == ("hangup", 23, None, 11)
    assert channel.steps[0].source.line == 39 and channel.steps[0].source.file == str(SHIPPED)


async def test_the_controller_address_comes_from_the_globals_and_can_be_overridden() -> None:
    interpreter = DialplanInterpreter(
        load_dialplan(SHIPPED), globals_override={"HOTLINE_AGI_HOSTS": "10.0.0.5:4600"}
    )
    channel = ScriptedChannel(apps={"AGI": FINISHED})
    await interpreter.run(channel, "from-pstn", "88002000002")
    assert channel.ran == [("AGI", "agi://10.0.0.5:4600/hotline?did=88002000002&reentry=0")]


async def test_a_finished_call_whose_command_failed_is_not_handed_back(
    shipped: DialplanInterpreter,
) -> None:
    """Asterisk 22 ends a session with AGISTATUS=FAILURE when a command failed on the live
    channel (agi-idle-hangup-and-record-failures.txt: RECORD FILE's writefile), also when the
    controller then finished the call: HOTLINE_DONE decides, the call ends there."""
    done_but_failed = agi(AGISTATUS="FAILURE", HOTLINE_DID="88001000001", HOTLINE_DONE="1")
    channel = ScriptedChannel(apps={"AGI": done_but_failed})
    end = await shipped.run(channel, "from-pstn", "88001000001")
    assert [app for app, _ in channel.ran if app in ("AGI", "Queue", "Wait")] == ["AGI"]
    assert end.reason == "hangup"


def several(*hosts: str) -> DialplanInterpreter:
    return DialplanInterpreter(
        load_dialplan(SHIPPED), globals_override={"HOTLINE_AGI_HOSTS": "&".join(hosts)}
    )


async def test_the_first_controller_down_the_second_one_answers_at_once() -> None:
    def first_down(channel: ScriptedChannel, data: str) -> AppResult:
        return (agi(AGISTATUS="FAILURE") if "10.0.0.5" in data else FINISHED)(channel, data)

    channel = ScriptedChannel(apps={"AGI": first_down})
    end = await several("10.0.0.5:4573", "10.0.0.6:4573").run(channel, "from-pstn", "88002000002")
    assert channel.ran == [
        ("AGI", "agi://10.0.0.5:4573/hotline?did=88002000002&reentry=0"),
        ("AGI", "agi://10.0.0.6:4573/hotline?did=88002000002&reentry=1"),  # no hold music
    ]
    assert end.reason == "hangup"


async def test_a_controller_gone_mid_call_hands_over_to_the_next_then_the_first_again() -> None:
    """The first controller dies mid-call (tagged, not done), the second is down: hold music,
    then the list from the top, where the first (restarted) takes the call back."""
    tries = iter([HANDED_BACK, agi(AGISTATUS="FAILURE"), FINISHED])

    def run(channel: ScriptedChannel, data: str) -> AppResult:
        return next(tries)(channel, data)

    channel = ScriptedChannel(apps={"AGI": run})
    await several("10.0.0.5:4573", "10.0.0.6:4573").run(channel, "from-pstn", "88001000001")
    url = "/hotline?did=88001000001&reentry="
    assert channel.ran == [
        ("AGI", f"agi://10.0.0.5:4573{url}0"),
        ("AGI", f"agi://10.0.0.6:4573{url}1"),
        ("StartMusicOnHold", ""),
        ("Wait", "3"),
        ("StopMusicOnHold", ""),
        ("AGI", f"agi://10.0.0.5:4573{url}2"),
    ]


async def test_every_controller_down_the_budget_still_ends_in_the_queue() -> None:
    channel = ScriptedChannel(apps={"AGI": agi(AGISTATUS="FAILURE")})
    start = channel.epoch
    await several("10.0.0.5:4573", "10.0.0.6:4573").run(channel, "from-pstn", "88001000001")
    assert channel.ran[-1] == ("Queue", "hotline-general,t,,,1800")
    hosts = [data.split("/")[2] for app, data in channel.ran if app == "AGI"]
    # each round every host, in order; HOTLINE_REENTRY_MAX (30) counts the re-tries of every
    # host: with two, 15 rounds of 3 s after the first try
    assert hosts == (["10.0.0.5:4573", "10.0.0.6:4573"] * 16)[:31]
    assert channel.epoch - start == 45


async def test_a_caller_who_hangs_up_during_the_agi_ends_the_dialplan_there(
    shipped: DialplanInterpreter,
) -> None:
    channel = ScriptedChannel(apps={"AGI": agi(AGISTATUS="HANGUP", HOTLINE_DID="88001000001")})
    end = await shipped.run(channel, "from-pstn", "88001000001")
    assert (end.reason, end.address.priority) == ("app-hangup", 8)
    assert [app for app, _ in channel.ran] == ["AGI"]


@pytest.mark.parametrize(
    ("number", "queue"),
    [
        ("88001000001", "hotline-general"),
        ("88002000002", "hotline-documents"),
        ("88003000003", "hotline-business"),
        ("88004000004", "hotline-social"),
        ("88005000005", "hotline-emergency"),
        ("88009999999", "hotline-general"),  # added to the controller, not to the dialplan yet
    ],
)
async def test_an_unreachable_controller_sends_the_call_to_the_numbers_queue(
    shipped: DialplanInterpreter, number: str, queue: str
) -> None:
    channel = ScriptedChannel(apps={"AGI": agi(AGISTATUS="FAILURE")})
    start = channel.epoch
    end = await shipped.run(channel, "from-pstn", number)
    # Retried every 3 s with hold music for the 60 s budget, then the number's queue.
    hold = [("StartMusicOnHold", ""), ("Wait", "3"), ("StopMusicOnHold", "")]
    tries = [[("AGI", f"agi://127.0.0.1:4573/hotline?did={number}&reentry={n}")] for n in range(21)]
    assert channel.ran == [
        *[step for attempt in tries[:-1] for step in (*attempt, *hold)],
        *tries[-1],
        ("Answer", ""),
        ("Playback", "pls-hold-while-try"),
        ("Queue", f"{queue},t,,,1800"),
    ]
    assert channel.epoch - start == 60
    down = next(i for i, step in enumerate(channel.steps) if step.address.context != "from-pstn")
    assert channel.steps[down - 1].data == f"1?controller-down,{number},1"
    assert channel.steps[down].address == ExtenAddress("controller-down", number, 1)
    assert channel.variables.get("FALLBACK_QUEUE") == queue
    assert channel.trail()[-1] == ("controller-down", "fallback", 8, "Hangup", "")
    assert end.reason == "hangup"


async def test_a_controller_that_failed_before_tagging_the_call_counts_as_down(
    shipped: DialplanInterpreter,
) -> None:
    channel = ScriptedChannel(apps={"AGI": agi(AGISTATUS="SUCCESS")})  # no HOTLINE_DID
    await shipped.run(channel, "from-pstn", "88002000002")
    assert ("Queue", "hotline-documents,t,,,1800") in channel.ran
    # retried within the budget first, which an untagged call does not restart
    assert [app for app, _ in channel.ran].count("AGI") == 21


def handed_back_then(*later: App) -> App:
    """An AGI whose controller goes away mid-call (tagged, not done), then runs `later`."""
    runs = iter(later)

    def run(channel: ScriptedChannel, data: str) -> AppResult:
        return next(runs, HANDED_BACK)(channel, data)

    return run


HANDED_BACK = agi(AGISTATUS="SUCCESS", HOTLINE_DID="88001000001")


async def test_a_call_the_controller_handed_back_re_enters_after_hold_music(
    shipped: DialplanInterpreter,
) -> None:
    channel = ScriptedChannel(apps={"AGI": handed_back_then(HANDED_BACK, FINISHED)})
    end = await shipped.run(channel, "from-pstn", "88001000001")
    url = "agi://127.0.0.1:4573/hotline?did=88001000001&reentry="
    hold = [("StartMusicOnHold", ""), ("Wait", "3"), ("StopMusicOnHold", "")]
    assert channel.ran == [("AGI", f"{url}0"), *hold, ("AGI", f"{url}1")]
    assert (end.reason, end.address.exten, end.address.priority) == ("hangup", "88001000001", 23)


async def test_each_controller_that_took_the_call_restarts_the_budget(
    shipped: DialplanInterpreter,
) -> None:
    """A controller that serves the call for a while, then goes away, every time: retried
    past the 60 s budget, but at most HOTLINE_REENTRY_MAX (30) times, then the queue."""

    def serves_a_while(channel: ScriptedChannel, data: str) -> AppResult:
        channel.epoch += 50
        return HANDED_BACK(channel, data)

    channel = ScriptedChannel(apps={"AGI": serves_a_while})
    await shipped.run(channel, "from-pstn", "88001000001")
    assert [app for app, _ in channel.ran].count("AGI") == 31
    assert channel.ran[-1] == ("Queue", "hotline-general,t,,,1800")


@pytest.mark.parametrize(
    ("status", "apology"), [("TIMEOUT", True), ("JOINEMPTY", True), ("LEAVEEMPTY", False)]
)
async def test_the_fallback_queue_result_decides_the_apology(
    shipped: DialplanInterpreter, status: str, apology: bool
) -> None:
    channel = ScriptedChannel(
        apps={"AGI": agi(AGISTATUS="FAILURE"), "Queue": sets(QUEUESTATUS=status)}
    )
    end = await shipped.run(channel, "from-pstn", "88001000001")
    after_queue = channel.ran[channel.ran.index(("Queue", "hotline-general,t,,,1800")) + 1 :]
    assert after_queue == ([("Playback", "pls-try-call-later")] if apology else [])
    assert f"Fallback queue ended: QUEUESTATUS={status}" in [step.data for step in channel.steps]
    assert (end.reason, end.address.exten) == ("hangup", "fallback")


@pytest.mark.parametrize("dialled", ["78002000002", "+78002000002"])
async def test_7800_and_plus_7800_are_normalised_to_8800(
    shipped: DialplanInterpreter, dialled: str
) -> None:
    channel = ScriptedChannel(apps={"AGI": FINISHED})
    await shipped.run(channel, "from-pstn", dialled)
    assert channel.trail()[0] == ("from-pstn", dialled, 1, "Goto", "88002000002,1")
    assert channel.steps[1].address == ExtenAddress("from-pstn", "88002000002", 1)
    assert channel.ran == [("AGI", "agi://127.0.0.1:4573/hotline?did=88002000002&reentry=0")]


async def test_a_number_the_carrier_should_not_send_is_refused(
    shipped: DialplanInterpreter,
) -> None:
    with pytest.raises(NoSuchExtension, match="88001"):
        await shipped.run(ScriptedChannel(), "from-pstn", "880010")
    with pytest.raises(NoSuchExtension, match="no context"):
        await shipped.run(ScriptedChannel(), "from-nowhere", "88001000001")


# -- [operators] and [operator-feature] -----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "query"),
    [
        ("*81", "login"),
        ("*82", "pause"),
        ("*821", "pause&reason=1"),
        ("*823", "pause&reason=3"),
        ("*83", "ready"),
        ("*84", "logout"),
    ],
)
async def test_feature_codes_run_the_subroutine_with_their_argument(
    shipped: DialplanInterpreter, code: str, query: str
) -> None:
    channel = ScriptedChannel(
        "PJSIP/1001-00000004",
        apps={"AGI": agi(AGISTATUS="SUCCESS", OPERATOR_FEATURE_RESULT="ok", OPERATOR_STATE="x")},
    )
    end = await shipped.run(channel, "operators", code)
    assert channel.ran == [("AGI", f"agi://127.0.0.1:4573/operator-feature?code={query}")]
    assert channel.steps[0].app == "Gosub"
    assert channel.steps[6].data == f"Feature code {query}: SUCCESS ok x"
    assert channel.trail()[-2:] == [
        ("operator-feature", "s", 10, "Return", ""),
        ("operators", code, 2, "Hangup", ""),
    ]
    assert ("LOCAL(ARG1)", query) in channel.varsets and ("LOCAL(ARGC)", "1") in channel.varsets
    assert channel.variables.get("ARG1") is None  # Return popped the frame
    assert channel.variables.get("GOSUB_RETVAL") == ""
    assert end.reason == "hangup"


async def test_a_feature_code_the_controller_did_not_answer_plays_the_failure(
    shipped: DialplanInterpreter,
) -> None:
    channel = ScriptedChannel("PJSIP/1001-00000004", apps={"AGI": agi(AGISTATUS="FAILURE")})
    await shipped.run(channel, "operators", "*83")
    assert channel.ran[1:] == [("Answer", ""), ("Playback", "hotline/operator-feature-failed")]
    assert channel.trail()[-1] == ("operators", "*83", 2, "Hangup", "")


async def test_a_feature_code_goes_to_the_next_controller_when_the_first_is_down() -> None:
    def first_down(channel: ScriptedChannel, data: str) -> AppResult:
        if "10.0.0.5" in data:
            return agi(AGISTATUS="FAILURE")(channel, data)
        return agi(AGISTATUS="SUCCESS", OPERATOR_FEATURE_RESULT="ok", OPERATOR_STATE="ready")(
            channel, data
        )

    channel = ScriptedChannel("PJSIP/1001-00000004", apps={"AGI": first_down})
    await several("10.0.0.5:4573", "10.0.0.6:4573").run(channel, "operators", "*83")
    assert channel.ran == [
        ("AGI", "agi://10.0.0.5:4573/operator-feature?code=ready"),
        ("AGI", "agi://10.0.0.6:4573/operator-feature?code=ready"),
    ]  # and no failure prompt
    assert channel.trail()[-2] == ("operator-feature", "s", 10, "Return", "")


async def test_operators_dial_each_other(shipped: DialplanInterpreter) -> None:
    channel = ScriptedChannel("PJSIP/1001-00000004")
    await shipped.run(channel, "operators", "1002")
    assert channel.ran == [("Dial", "PJSIP/1002,30")]


# -- Dial's U() and b() subroutines ---------------------------------------------------------


async def test_the_acd_answer_hook_runs_on_the_operators_channel_and_returns(
    shipped: DialplanInterpreter,
) -> None:
    # the controller holding the caller names itself: the hook goes there, whichever of
    # HOTLINE_AGI_HOSTS it is
    options = app_options("gU(hotline-acd-answered^1700000000.42^10.0.0.6:4573)")
    assert options == {"g": "", "U": "hotline-acd-answered^1700000000.42^10.0.0.6:4573"}
    operator = ScriptedChannel("PJSIP/1001-00000002", apps={"AGI": agi(AGISTATUS="SUCCESS")})
    result = await shipped.run_subroutine(operator, callee_gosub(options["U"]))
    assert operator.trail() == [
        ("hotline-acd-answered", "s", 1, "ExecIf", "0?Set(LOCAL(ARG2)=127.0.0.1:4573)"),
        ("hotline-acd-answered", "s", 2, "AGI",
         "agi://10.0.0.6:4573/acd-answered?call=1700000000.42"),
        ("hotline-acd-answered", "s", 3, "Return", ""),
    ]  # fmt: skip
    assert result.returned and result.retval == "" and result.end.reason == "return"
    assert operator.variables.get("ARG1") is None


async def test_an_older_controllers_hook_without_its_address_goes_to_hotline_controller(
    shipped: DialplanInterpreter,
) -> None:
    """A controller of the previous version (rolling upgrade) names no host on U()."""
    operator = ScriptedChannel("PJSIP/1001-00000002", apps={"AGI": agi(AGISTATUS="SUCCESS")})
    result = await shipped.run_subroutine(operator, callee_gosub("hotline-acd-answered^7"))
    assert operator.ran == [("AGI", "agi://127.0.0.1:4573/acd-answered?call=7")]
    assert result.returned


async def test_a_u_hook_whose_channel_hangs_up_does_not_return(
    shipped: DialplanInterpreter,
) -> None:
    operator = ScriptedChannel("PJSIP/1001-00000002", apps={"AGI": lambda c, d: HANGUP})
    result = await shipped.run_subroutine(operator, callee_gosub("hotline-acd-answered^7"))
    assert not result.returned and result.end.reason == "app-hangup"
    assert operator.variables.get("ARG1") is None
    assert operator.variables.get("GOSUB_RETVAL") == ""


async def test_escalation_dials_the_agency_with_the_headers_predial_handler(
    shipped: DialplanInterpreter,
) -> None:
    data = {"HOTLINE_CALL": "1700.1", "HOTLINE_AGENCY": "fns", "HOTLINE_DATA": "d%20"}
    caller = ScriptedChannel("PJSIP/trunk-00000009", variables=data)
    await shipped.run(caller, "hotline-escalate-out", "74951234567")
    dial = caller.ran[-1]
    assert dial == ("Dial", "PJSIP/74951234567@trunk,,b(hotline-escalate-headers^s^1)")
    handler = app_options(dial[1].split(",")[2])["b"]
    agency = ScriptedChannel("PJSIP/trunk-0000000a", variables=data)
    result = await shipped.run_subroutine(agency, predial_gosub(handler))
    assert result.returned
    assert agency.written == [
        ("PJSIP_HEADER", "add,X-Hotline-Call", "1700.1"),
        ("PJSIP_HEADER", "add,X-Hotline-Agency", "fns"),
        ("PJSIP_HEADER", "add,X-Hotline-Data", "d%20"),
        ("PJSIP_HEADER", "add,X-Hotline-History", ""),
    ]


async def test_a_redirect_during_dial_moves_the_channel_and_a_bad_number_hits_i(
    shipped: DialplanInterpreter,
) -> None:
    redirected = ExtenAddress("hotline-escalate-out", "12345", 1)  # as an AMI Redirect would
    caller = ScriptedChannel(apps={"Dial": lambda channel, data: AppResult(goto=redirected)})
    end = await shipped.run(caller, "hotline-escalate-out", "74951234567")
    assert caller.trail()[-1] == ("hotline-escalate-out", "i", 1, "Hangup", "")
    assert caller.variables.get("INVALID_EXTEN") == "12345"
    assert end.reason == "hangup"


# -- callbacks ------------------------------------------------------------------------------


@pytest.mark.parametrize(("parties", "joins"), [("1", True), ("0", False)])
async def test_the_citizen_joins_only_a_conference_the_operator_is_still_in(
    shipped: DialplanInterpreter, parties: str, joins: bool
) -> None:
    citizen = ScriptedChannel(
        "Local/79161234567@hotline-callback-out-00000001;1",
        variables={"CALLBACK_ID": "7", "CALLBACK_BRIDGE": "hotline-callback-7"},
        functions={"CONFBRIDGE_INFO(parties,hotline-callback-7)": parties},
    )
    end = await shipped.run(citizen, "hotline-callback-caller", "s")
    assert citizen.steps[2].data == f"{int(parties == '0')}?operator-left"
    if joins:
        assert citizen.ran == [("ConfBridge", "hotline-callback-7")]
        assert [args for name, args, _ in citizen.written if name == "CONFBRIDGE"] == [
            "user,quiet", "user,marked", "user,end_marked_any",
        ]  # fmt: skip
    else:
        assert citizen.ran == [("Playback", "hotline/callback-operator-left")]
    assert end.reason == "hangup"


async def test_the_operator_waits_in_the_callback_conference(
    shipped: DialplanInterpreter,
) -> None:
    operator = ScriptedChannel(
        "PJSIP/1001-00000007", variables={"CALLBACK_ID": "7", "CALLBACK_BRIDGE": "hotline-cb-7"}
    )
    await shipped.run(operator, "hotline-callback-operator", "s")
    assert (
        operator.steps[0].data == "Callback 7: operator PJSIP/1001-00000007 waits in hotline-cb-7"
    )
    assert len(operator.written) == 4 and operator.ran == [("ConfBridge", "hotline-cb-7")]
    citizen = ScriptedChannel()
    await shipped.run(citizen, "hotline-callback-out", "79161234567")
    assert citizen.ran == [("Dial", "PJSIP/79161234567@trunk")]


# -- what a real Asterisk 22 reported (tests/data/asterisk/) ---------------------------------


def _newextens(transcript: str, channel: str) -> list[tuple[str, str, int, str, str]]:
    text = stream(load(transcript), "asterisk->client").decode()
    found = []
    for message in text.split("\r\n\r\n"):
        headers = dict(line.split(": ", 1) for line in message.split("\r\n") if ": " in line)
        if headers.get("Event") == "Newexten" and headers["Channel"] == channel:
            if headers["Application"] not in ("AppDial2", "AppQueue"):
                found.append(
                    (headers["Context"], headers["Extension"], int(headers["Priority"]),
                     headers["Application"], headers["AppData"])
                )  # fmt: skip
    return found


@pytest.mark.parametrize(
    ("transcript", "channel", "start", "apps", "variables"),
    [
        ("ami-agi-server-down.txt", "Local/88001000002@from-pstn-00000009;2",
         ("from-pstn", "88001000002"), {"AGI": agi(AGISTATUS="FAILURE")}, {}),
        ("ami-ivr-call.txt", "Local/88001000001@from-pstn-00000000;2",
         ("from-pstn", "88001000001"), {"AGI": agi(AGISTATUS="HANGUP")}, {}),
        ("ami-ivr-call.txt", "Local/88001000001@from-pstn-00000000;1",
         ("test-caller", "s"), {}, {}),
        ("ami-queue-call.txt", "Local/s@queue-entry-00000000;2",
         ("queue-entry", "s"), {"Queue": lambda c, d: HANGUP}, {"UNIQUEID": "1795563226.1"}),
        ("ami-queue-call.txt", "Local/agent2@agents-00000001;2", ("agents", "agent2"), {}, {}),
    ],
)  # fmt: skip
async def test_the_priorities_run_are_those_a_real_asterisk_reported(
    transcript: str,
    channel: str,
    start: tuple[str, str],
    apps: dict[str, App],
    variables: dict[str, str],
) -> None:
    interpreter = DialplanInterpreter.from_file(DATA / "conf" / "extensions.conf")
    simulated = ScriptedChannel(channel, apps=apps, variables=variables)
    await interpreter.run(simulated, *start)
    assert simulated.trail() == _newextens(transcript, channel)


# -- broken dialplans -----------------------------------------------------------------------


def _conf(tmp_path: Path, text: str, name: str = "extensions.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[a]\nexten => 1,1,NoOp(x)\nexten => 1,n,NoOp(unclosed\n", 3, "no closing"),
        ("[a]\n; fine\nsame => n,NoOp()\n", 3, "same"),
        ("exten => 1,1,NoOp()\n", 1, "before any"),
        ("[a]\nexten => 1,1,NoOp()\nthis is not an entry\n", 3, "expected"),
        ("[a]\nexten => 1,1,NoOp()\nexten => 1,1,NoOp()\n", 3, "already defined at"),
        ("[a]\nexten => _X[12,1,NoOp()\n", 2, "unclosed"),
        ("[a]\nexten => _X.1,1,NoOp()\n", 2, "must end"),
        ("[a]\nexten => 1,nope,NoOp()\n", 2, "label"),
        ("[a]\nexten => 1/100,1,NoOp()\n", 2, "caller-ID"),
        ("[a]\nswitch => IAX2/x\n", 2, "not supported"),
        ("[a](!)\n", 1, "options"),
        ("[a]\n#exec /bin/true\n", 2, "#exec is not supported"),
    ],
)
def test_syntax_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _conf(tmp_path, text)
    with pytest.raises(DialplanSyntaxError, match=message) as caught:
        load_dialplan(path)
    assert caught.value.source.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_includes_are_read_relative_to_the_conf_directory(tmp_path: Path) -> None:
    _conf(tmp_path, "[globals]\nWHO=${WHERE}-x\n", "extensions.d/globals.conf")
    _conf(tmp_path, "[b]\nexten => s,1,NoOp(${WHO})\n", "extensions.d/b.conf")
    main = _conf(
        tmp_path,
        "[globals]\nWHERE=here\n#include extensions.d/globals.conf\n"
        '#include "extensions.d/b.conf"\n#tryinclude missing.conf\n[a]\ninclude => b\n',
    )
    dialplan = load_dialplan(main)
    assert dialplan.globals == {"WHERE": "here", "WHO": "here-x"}
    assert dialplan.contexts["a"].includes == ["b"]
    assert dialplan.find("a", "s", 1) is not None  # through the include
    assert dialplan.find("b", "s", 1).source.file.endswith("b.conf")  # type: ignore[union-attr]


def test_a_missing_include_names_the_directive(tmp_path: Path) -> None:
    path = _conf(tmp_path, "[a]\nexten => s,1,NoOp()\n\n#include nowhere.conf\n")
    with pytest.raises(DialplanSyntaxError, match=r"nowhere\.conf") as caught:
        load_dialplan(path)
    assert caught.value.source.line == 4


async def test_a_goto_to_a_missing_context_is_a_clear_error(tmp_path: Path) -> None:
    path = _conf(tmp_path, "[a]\nexten => s,1,NoOp()\n same => n,Goto(nowhere,s,1)\n")
    interpreter = DialplanInterpreter.from_file(path)
    with pytest.raises(DialplanError, match=rf"{path}:3 .*context 'nowhere' does not exist"):
        await interpreter.run(ScriptedChannel(), "a", "s")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Goto(s,nolabel)", "no label 'nolabel'"),
        ("Goto(b,1)", "'b' is not in context 'a'"),
        ("Return()", "Return without Gosub"),
        ("Gosub(a,x,1)", "does not exist"),
        ("NoOp(${UNKNOWN_FUNC(x)})", r"UNKNOWN_FUNC\(\) is not implemented"),
        ("Set(UNKNOWN_FUNC(x)=1)", r"UNKNOWN_FUNC\(\) cannot be set"),
        ("GotoIf($[ = 1]?s,1)", "operand is missing"),
    ],
)
async def test_runtime_errors_name_the_priority(tmp_path: Path, line: str, message: str) -> None:
    path = _conf(tmp_path, f"[a]\nexten => s,1,NoOp()\n same => n,{line}\n")
    interpreter = DialplanInterpreter.from_file(path)
    with pytest.raises(DialplanError, match=message) as caught:
        await interpreter.run(ScriptedChannel(), "a", "s")
    assert f"{path}:3 " in str(caught.value)


async def test_an_endless_goto_loop_stops_at_the_step_limit(tmp_path: Path) -> None:
    path = _conf(tmp_path, "[a]\nexten => s,1(top),NoOp(round)\n same => n,Goto(top)\n")
    interpreter = DialplanInterpreter.from_file(path, max_steps=50)
    channel = ScriptedChannel()
    with pytest.raises(DialplanLoopError, match=r"more than 50 priorities"):
        await interpreter.run(channel, "a", "s")
    assert len(channel.steps) == 50


async def test_an_extension_that_runs_out_of_priorities_falls_through(tmp_path: Path) -> None:
    path = _conf(
        tmp_path,
        "[a]\nexten => s,1,Set(X=1)\n same => n,Playback(x)\nexten => h,1,NoOp(h for ${X})\n",
    )
    channel = ScriptedChannel()
    end = await DialplanInterpreter.from_file(path).run(channel, "a", "s")
    assert (end.reason, end.address) == ("fallthrough", ExtenAddress("a", "s", 3))
    assert channel.trail()[-1] == ("a", "h", 1, "NoOp", "h for 1")  # the h extension ran
