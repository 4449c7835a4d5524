"""The sans-IO FastAGI wire format (hotline.agi.protocol), checked against Asterisk 22's bytes."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest
from transcripts import load

from hotline.agi.protocol import (
    HANGUP,
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    EnvReader,
    Quoted,
    ReplyReader,
    format_command,
    format_env,
    format_reply,
    iter_lines,
    parse_command,
    parse_env_block,
    parse_env_line,
    parse_reply_line,
    quote_arg,
)

TRANSCRIPT = load("agi-ivr-session.txt")
ENV_BLOCK = TRANSCRIPT[0].data


def transcript_env() -> dict[str, str]:
    return dict(parse_env_line(line) for line in iter_lines(ENV_BLOCK) if line)


# --- environment ---------------------------------------------------------------------------------


def test_the_real_environment_parses_line_by_line() -> None:
    env = transcript_env()
    assert len(env) == 22
    assert env["agi_calleridname"] == "Иванов Иван"
    assert env["agi_accountcode"] == ""  # "agi_accountcode: " with nothing after
    assert env["agi_uniqueid"] == "1795563091.1"
    assert env["agi_network_script"] == "hotline?did=88001000001"


def test_the_environment_round_trips_to_the_same_bytes() -> None:
    assert format_env(transcript_env()) == ENV_BLOCK


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("agi_language: ru", ("agi_language", "ru")),
        ("agi_accountcode: ", ("agi_accountcode", "")),
        ("agi_accountcode:", ("agi_accountcode", "")),
        ("agi_calleridname: a: b", ("agi_calleridname", "a: b")),
        ('agi_arg_1: "quoted" \\ value', ("agi_arg_1", '"quoted" \\ value')),
    ],
)
def test_env_lines(line: str, expected: tuple[str, str]) -> None:
    assert parse_env_line(line) == expected


@pytest.mark.parametrize(
    "line",
    ["GET / HTTP/1.1", "agi_language ru", "AGI_LANGUAGE: ru", "callerid: 1", ": value", "agi-x: 1"],
)
def test_env_garbage_raises(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_env_line(line)


def block_line_by_line(lines: list[str]) -> dict[str, str] | str:
    try:
        return dict(parse_env_line(line) for line in lines)
    except AgiProtocolError:
        return "refused"


def block_at_once(lines: list[str], reader: EnvReader | None = None) -> dict[str, str] | str:
    try:
        if reader is not None:
            return reader.read("\n".join(lines), {})
        return parse_env_block("\n".join(lines), {})
    except AgiProtocolError:
        return "refused"


def readers() -> list[EnvReader]:
    """A reader that learnt the transcript's layout, and one that learns as it reads."""
    warmed = EnvReader()
    warmed.read("\n".join(asterisk_lines()), {})
    return [warmed, EnvReader()]


def asterisk_lines(**values: str) -> list[str]:
    """The transcript's environment lines, with some values replaced."""
    env = {**transcript_env(), **{f"agi_{name}": value for name, value in values.items()}}
    return [f"{key}: {value}" for key, value in env.items()]


@pytest.mark.parametrize(
    "lines",
    [
        asterisk_lines(),  # Asterisk's names in Asterisk's order: one regex match
        asterisk_lines(calleridname="a: b", accountcode="x:", callerid=""),
        asterisk_lines(calleridname="tab\there\rcarriage", channel="agi_uniqueid: 6.6"),
        [*asterisk_lines(), "agi_arg_1: resume", "agi_arg_2: a: b"],  # AGI arguments follow
        [*asterisk_lines(), "agi_uniqueid: 7.7"],  # a name again: the last one counts
        [*asterisk_lines(), "agi_accountcode:"],  # no space after the colon
        [*asterisk_lines(), "AGI_LANGUAGE: ru"],
        [*asterisk_lines(), ""],
        asterisk_lines()[:5],  # half of it (the rest in the next read)
        asterisk_lines()[1:],
        [*asterisk_lines()[:5], "agi_accountcode:", *asterisk_lines()[5:]],
        [*asterisk_lines()[:5], "agi_arg_1: x", *asterisk_lines()[5:]],
        [line.replace("agi_callerid: ", "agi_callerid : ") for line in asterisk_lines()],
        [line.replace("agi_type: ", "agi_type:") for line in asterisk_lines()],
        [*asterisk_lines()[:9], "agi_language ru", *asterisk_lines()[9:]],
        [*asterisk_lines()[:9], "agi-x: 1", *asterisk_lines()[9:]],
        [*asterisk_lines()[:9], ": value", *asterisk_lines()[9:]],
        [*asterisk_lines()[:9], "agi_language\x00: ru", *asterisk_lines()[9:]],
        ["GET / HTTP/1.1", *asterisk_lines()],
    ],
)
def test_an_environment_block_reads_as_its_lines_one_by_one(lines: list[str]) -> None:
    """`parse_env_block` reads Asterisk's own layout with one regex match: it must accept,
    refuse and keep exactly what `parse_env_line` does line by line, in the same order."""
    expected = block_line_by_line(lines)
    for reader in [None, *readers()]:
        for _ in range(2):  # the second time, a reader has the layout of the first
            got = block_at_once(lines, reader)
            assert got == expected
            if isinstance(expected, dict):
                assert isinstance(got, dict) and list(got.items()) == list(expected.items())


def test_a_reader_learns_the_dialplan_s_values_and_never_a_caller_s() -> None:
    """Calls of two dialplan contexts in turn, each caller's values its own: every call
    reads as its lines, and what the reader remembers is the contexts' values only."""
    reader = EnvReader()
    for number in range(6):
        lines = asterisk_lines(
            uniqueid=f"1795560{number}.1",
            callerid=f"7916000000{number}",
            calleridname=f"Абонент {number}",
            channel=f"SIP/trunk-0000000{number}",
            context=("from-pstn", "from-sip")[number % 2],
            dnid=("88001000001", "88002000002")[number % 2],
        )
        got = reader.read("\n".join(lines), {})
        assert list(got.items()) == list(block_line_by_line(lines).items())  # type: ignore[union-attr]
    remembered = repr(reader)
    assert "from-pstn" in remembered and "from-sip" in remembered
    for private in ("7916000000", "Абонент", "1795560", "trunk-", "hotline?did", "140365331"):
        assert private not in remembered


def test_an_environment_in_two_reads_reads_as_in_one() -> None:
    lines = [*asterisk_lines(uniqueid="8.8"), "agi_arg_1: resume"]
    for cut in (1, 5, 22):
        env = parse_env_block("\n".join(lines[:cut]), {})
        env = parse_env_block("\n".join(lines[cut:]), env)
        assert list(env.items()) == list(block_line_by_line(lines).items())  # type: ignore[union-attr]


def test_request_splits_off_the_query_string() -> None:
    request = AgiRequest.from_env(transcript_env())
    assert request == AgiRequest(script="hotline", query={"did": "88001000001"}, args=())


def test_request_falls_back_to_agi_request_and_reads_args_in_order() -> None:
    env = {
        "agi_request": "agi://10.0.0.1:4573/ivr/main?did=88002000002&lang=ru",
        "agi_arg_1": "first",
        "agi_arg_2": "",
        "agi_arg_3": "third, with comma",
    }
    request = AgiRequest.from_env(env)
    assert request.script == "ivr/main"
    assert request.query == {"did": "88002000002", "lang": "ru"}
    assert request.args == ("first", "", "third, with comma")


@pytest.mark.parametrize(
    "query",
    ["did=1&reentry=2", "a=1&&b=&c", "=x&y==z", "a=1&a=2", "topic=%D0%B0+b", "x+y=1", "a=1;b=2"],
)
def test_the_query_string_reads_as_parse_qsl_reads_it(query: str) -> None:
    request = AgiRequest.from_env({"agi_network_script": f"hotline?{query}"})
    assert request.query == dict(parse_qsl(query, keep_blank_values=True))


def test_request_with_no_script_at_all() -> None:
    assert AgiRequest.from_env({}).script == ""


# --- commands ------------------------------------------------------------------------------------


def test_commands_are_formatted_as_in_the_transcript() -> None:
    sent = {b.data for b in TRANSCRIPT if b.direction == "server->asterisk"}
    ours = {
        format_command("ANSWER"),
        format_command("STREAM FILE", "beep", Quoted("12#")),
        format_command("GET DATA", "demo-enterkeywords", 4000, 6),
        format_command("SAY DIGITS", "123", Quoted("")),
        format_command("SAY NUMBER", 21, Quoted("")),
        format_command("SET VARIABLE", "HOTLINE_TOPIC", Quoted("регистрация и вход")),
        format_command("GET VARIABLE", "HOTLINE_TOPIC"),
        format_command("GET FULL VARIABLE", "${CALLERID(name)}"),
        format_command("EXEC", "NoSuchApplication", Quoted("x")),
        format_command("VERBOSE", "probe message", 1),
        format_command("RECORD FILE", "/tmp/agi-rec", "wav", Quoted("#"), 4000, 0, "s=2"),
        format_command("STREAM FILE", "demo-congrats", ""),
    }
    assert ours <= sent


def test_quoting_a_plain_word_changes_nothing_for_asterisk() -> None:
    # Why exec() may always quote its options although the transcript has `EXEC Playback beep`.
    assert parse_command('EXEC Playback "beep"') == parse_command("EXEC Playback beep")
    assert parse_command('EXEC Queue "general,t,,,1800"') == ["EXEC", "Queue", "general,t,,,1800"]


def test_a_bad_verb_or_argument_type_is_refused() -> None:
    for verb in ["answer", "ANSWER\nEXEC", "", "STREAM  FILE "]:
        with pytest.raises(ValueError):
            format_command(verb)
    with pytest.raises(TypeError):
        format_command("WAIT FOR DIGIT", True)


HOSTILE = [
    '"; HANGUP\nEXEC System rm',
    'Ivan" ; EXEC System "rm -rf /',
    "back\\slash",
    "ends with a backslash\\",
    '\\"',
    'an "inner" quote',
    "cr\rlf\nboth\r\n",
    "nul\x00byte",
    "tab\there",
    "",
    "   ",
    "Иванов Иван",
    "${SHELL(rm -rf /)}",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_quoted_value_is_one_line_and_one_argument(value: str) -> None:
    line = format_command("SET VARIABLE", "X", Quoted(value))
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert b"\r" not in line and b"\x00" not in line
    words = parse_command(line[:-1].decode())
    assert words == ["SET", "VARIABLE", "X", _without_line_breaks(value)]


@pytest.mark.parametrize("value", HOSTILE)
def test_an_unquoted_value_is_quoted_when_it_needs_it(value: str) -> None:
    line = format_command("EXEC", "Playback", value)
    assert line.count(b"\n") == 1
    assert parse_command(line[:-1].decode()) == ["EXEC", "Playback", _without_line_breaks(value)]


def test_random_values_round_trip() -> None:
    alphabet = 'ab "\\\r\n\x00\t;$(){}яЖ,|'
    rng = random.Random(20261124)
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        line = format_command("SET VARIABLE", "X", value)
        assert line.count(b"\n") == 1
        assert parse_command(line[:-1].decode())[3] == _without_line_breaks(value)


def test_quote_arg() -> None:
    assert quote_arg('a "b" \\c') == '"a \\"b\\" \\\\c"'


def _without_line_breaks(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ").replace("\x00", " ")


# --- replies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("200 result=0", AgiReply(200, "0")),
        ("200 result=0 endpos=3404", AgiReply(200, "0", endpos=3404)),
        ("200 result=112345", AgiReply(200, "112345")),
        ("200 result=1 (регистрация и вход)", AgiReply(200, "1", "регистрация и вход")),
        ("200 result=-2", AgiReply(200, "-2")),
        ("200 result=53", AgiReply(200, "53")),
        ("200 result=0 (timeout) endpos=0", AgiReply(200, "0", "timeout", 0)),
        ("200 result=-1 endpos=66080", AgiReply(200, "-1", endpos=66080)),
        ("200 result= (timeout)", AgiReply(200, "", "timeout")),
        ("510 Invalid or unknown command", AgiReply(510, text="Invalid or unknown command")),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            AgiReply(511, text="Command Not Permitted on a dead channel or intercept routine"),
        ),
    ],
)
def test_reply_forms(line: str, reply: AgiReply) -> None:
    assert parse_reply_line(line) == reply
    assert format_reply(reply) == line.encode() + b"\n"


def test_every_transcript_reply_parses() -> None:
    reader = ReplyReader()
    replies = []
    for block in TRANSCRIPT[1:]:
        if block.direction == "asterisk->server":
            for line in iter_lines(block.data):
                item = reader.feed(line)
                if item is not None:
                    replies.append(item)
    assert replies.count(HANGUP) == 1
    codes = [r.code for r in replies if isinstance(r, AgiReply)]
    assert codes.count(510) == 1 and codes.count(520) == 1 and codes.count(511) == 2


def test_timeout_marker_survives_an_empty_result() -> None:
    reply = parse_reply_line("200 result= (timeout)")
    assert reply.result == "" and reply.timed_out


def test_the_520_usage_block_is_read_to_its_end_line() -> None:
    block = next(b.data for b in TRANSCRIPT if b.data.startswith(b"520-"))
    reader = ReplyReader()
    lines = list(iter_lines(block))
    assert [reader.feed(line) for line in lines[:-1]] == [None, None]
    assert reader.in_usage_block
    reply = reader.feed(lines[-1])
    assert isinstance(reply, AgiReply) and reply.code == 520
    assert reply.text.startswith("Invalid command syntax.  Proper usage follows:\nSay a given")
    assert not reader.in_usage_block
    assert reader.feed("200 result=53") == AgiReply(200, "53")  # the next reply is in step
    assert format_reply(reply) == block


def test_hangup_is_a_notice_even_inside_a_usage_block() -> None:
    reader = ReplyReader()
    assert reader.feed("520-Invalid command syntax.  Proper usage follows:") is None
    assert reader.feed("HANGUP") is HANGUP
    assert reader.feed("520 End of proper usage.") == AgiReply(
        520, text="Invalid command syntax.  Proper usage follows:"
    )


@pytest.mark.parametrize(
    "line",
    ["", "20", "hello", "2000 result=0", "200result=0", "200 foo", "200 result=0 trailing", "abc"],
)
def test_reply_garbage_raises(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        ReplyReader().feed(line)


def test_a_non_numeric_result_raises_when_read_as_a_number() -> None:
    with pytest.raises(AgiProtocolError):
        _ = AgiReply(200, "abc").value


@pytest.mark.parametrize("result", ["٣", "1_000", " 7", "7 ", "+7", "", "-", "1" * 20, "0x1"])
def test_a_result_is_a_number_only_in_ascii_digits(result: str) -> None:
    with pytest.raises(AgiProtocolError):
        _ = AgiReply(200, result).value


@pytest.mark.parametrize(
    ("result", "value"), [("0", 0), ("-1", -1), ("48", 48), ("9" * 19, 10**19 - 1)]
)
def test_a_numeric_result(result: str, value: int) -> None:
    assert AgiReply(200, result).value == value
