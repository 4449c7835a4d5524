"""The sans-IO AMI wire format, against the bytes a real Asterisk 22 sent."""

from __future__ import annotations

import pytest
from transcripts import ami_transcripts, load, stream

from hotline.ami.protocol import (
    GREETING,
    AmiMessage,
    AmiParser,
    AmiProtocolError,
    Greeting,
    decode_message,
    encode_greeting,
    encode_message,
)

TO_CLIENT = "asterisk->client"
TO_ASTERISK = "client->asterisk"


def parse_all(data: bytes, *, expect_greeting: bool = True) -> list[AmiMessage | Greeting]:
    return AmiParser(expect_greeting=expect_greeting).feed(data)


def messages(data: bytes, *, expect_greeting: bool = True) -> list[AmiMessage]:
    return [
        m for m in parse_all(data, expect_greeting=expect_greeting) if isinstance(m, AmiMessage)
    ]


def count_terminators(data: bytes) -> int:
    return data.count(b"\r\n\r\n")


# --- reading what Asterisk sent -----------------------------------------------------------


@pytest.mark.parametrize("name", ami_transcripts())
def test_every_transcript_parses_in_one_read(name: str) -> None:
    data = stream(load(name), TO_CLIENT)
    items = parse_all(data)
    assert items[0] == Greeting("Asterisk Call Manager/11.0.0")
    assert len(items) - 1 == count_terminators(data)
    assert all(isinstance(m, AmiMessage) and m.kind in {"response", "event"} for m in items[1:])


@pytest.mark.parametrize("name", ami_transcripts())
def test_every_transcript_parses_block_by_block(name: str) -> None:
    parser = AmiParser(expect_greeting=True)
    items = [item for b in load(name) if b.direction == TO_CLIENT for item in parser.feed(b.data)]
    assert items == parse_all(stream(load(name), TO_CLIENT))


@pytest.mark.parametrize("name", ami_transcripts())
def test_client_side_of_every_transcript_parses(name: str) -> None:
    actions = messages(stream(load(name), TO_ASTERISK), expect_greeting=False)
    assert actions[0].kind == "action"
    assert actions[0].name == "Login"
    assert all(a.action_id for a in actions)


def test_greeting_is_one_line_with_no_blank_line_after() -> None:
    parser = AmiParser(expect_greeting=True)
    assert parser.feed(b"Asterisk Call Manager/11.0") == []
    assert parser.feed(b".0\r") == []
    assert parser.feed(b"\nResponse: Success\r\n") == [Greeting(GREETING)]
    assert parser.feed(b"\r\n") == [AmiMessage.of(("Response", "Success"))]


def test_greeting_round_trip() -> None:
    assert parse_all(encode_greeting()) == [Greeting(GREETING)]


def test_something_else_than_asterisk_is_refused() -> None:
    with pytest.raises(AmiProtocolError, match="greeting"):
        parse_all(b"SSH-2.0-OpenSSH_9.2\r\n")


def test_command_reply_split_over_three_writes() -> None:
    blocks = load("ami-actions.txt")
    cmd = next(i for i, b in enumerate(blocks) if b.data.startswith(b"Action: Command"))
    parser = AmiParser(expect_greeting=False)
    assert parser.feed(blocks[cmd + 1].data) == []
    assert parser.feed(blocks[cmd + 2].data) == []
    (reply,) = parser.feed(blocks[cmd + 3].data)
    assert isinstance(reply, AmiMessage)
    assert reply.name == "Success"
    assert reply["Message"] == "Command output follows"
    assert reply.getall("Output") == [
        "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-24 23:26:57 UTC"
    ]


def test_message_split_at_every_byte_offset() -> None:
    # A response, an event with Cyrillic (two bytes a letter) and an event list, in one piece.
    data = stream(load("ami-ivr-call.txt"), TO_CLIENT)[:6000]
    data = data[: data.rindex(b"\r\n\r\n") + 4]
    whole = parse_all(data)
    assert any("Иванов Иван" in v for m in messages(data) for _, v in m.headers)
    for offset in range(len(data) + 1):
        parser = AmiParser(expect_greeting=True)
        assert parser.feed(data[:offset]) + parser.feed(data[offset:]) == whole, offset


def test_one_byte_at_a_time_keeps_cyrillic_whole() -> None:
    data = stream(load("ami-queue-call.txt"), TO_CLIENT)
    parser = AmiParser(expect_greeting=True)
    items = [item for i in range(len(data)) for item in parser.feed(data[i : i + 1])]
    assert items == parse_all(data)
    names = {m.get("CallerIDName") for m in items if isinstance(m, AmiMessage)}
    assert {"Петров Пётр", "Сидорова Анна"} <= names
    assert not any("\ufffd" in v for m in messages(data) for _, v in m.headers)


def test_several_messages_in_one_read() -> None:
    blocks = load("ami-actions.txt")
    login_reply = next(
        b for b in blocks if b.data.startswith(b"Response: Success\r\nActionID: login")
    )
    items = messages(login_reply.data, expect_greeting=False)
    assert [m.name for m in items] == ["Success", "FullyBooted"]


def test_blank_lines_between_messages_are_skipped() -> None:
    data = b"\r\n\r\nEvent: A\r\n\r\n\r\nEvent: B\r\n\r\n"
    assert [m.name for m in messages(data, expect_greeting=False)] == ["A", "B"]


def test_partial_message_waits_for_its_end() -> None:
    parser = AmiParser(expect_greeting=False)
    assert parser.feed(b"Event: A\r\nX: 1\r\n") == []
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\nEvent: B\r\n") == [AmiMessage.of(("Event", "A"), ("X", "1"))]


def test_oversize_message_without_terminator_is_refused() -> None:
    parser = AmiParser(expect_greeting=False, max_bytes=1000)
    assert parser.feed(b"Event: Flood\r\n") == []
    with pytest.raises(AmiProtocolError, match="no message end"):
        for _ in range(200):
            parser.feed(b"Junk: " + b"x" * 40 + b"\r\n")


def test_oversize_greeting_is_refused() -> None:
    parser = AmiParser(expect_greeting=True, max_bytes=100)
    with pytest.raises(AmiProtocolError):
        parser.feed(b"A" * 200)


def test_line_without_colon_is_refused() -> None:
    with pytest.raises(AmiProtocolError, match="not an AMI header line"):
        parse_all(b"Event: A\r\nthis is not a header\r\n\r\n", expect_greeting=False)


# --- message accessors --------------------------------------------------------------------


def test_values_keep_colons_and_may_be_empty() -> None:
    message = decode_message(b"Event: RequestBadFormat\r\nRequestType: Action: FooBar\r\nX: \r\nY:")
    assert message["RequestType"] == "Action: FooBar"
    assert message["X"] == ""
    assert message["Y"] == ""


def test_headers_keep_order_and_repeats_and_match_case_insensitively() -> None:
    message = AmiMessage.of(("Response", "Success"), ("Output", "a"), ("Output", "b"))
    assert message.getall("output") == ["a", "b"]
    assert message.get("OUTPUT") == "a"
    assert "response" in message
    assert "Missing" not in message
    assert message.get("Missing") is None
    with pytest.raises(KeyError):
        message["Missing"]
    assert message.kind == "response"
    assert message.name == "Success"
    assert message.as_dict() == {"Response": "Success", "Output": "a"}


# --- writing ------------------------------------------------------------------------------


def test_encode_matches_what_the_transcript_client_wrote() -> None:
    data = stream(load("ami-actions.txt"), TO_ASTERISK)
    actions = messages(data, expect_greeting=False)
    assert b"".join(encode_message(a.headers) for a in actions) == data


def test_encode_round_trip_with_cyrillic_and_empty_value() -> None:
    headers = (("Action", "Originate"), ("CallerID", '"Иванов Иван" <79161234567>'), ("X", ""))
    assert messages(encode_message(headers), expect_greeting=False) == [AmiMessage(headers)]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Command", "core show version\r\nAction: Originate"),
        ("Command", "core show version\nAction: Originate"),
        ("Command", "x\r"),
        ("Bad\r\nAction", "Originate"),
        ("Bad\nKey", "x"),
        ("Colon:Key", "x"),
        ("", "x"),
    ],
)
def test_header_injection_is_refused(key: str, value: str) -> None:
    with pytest.raises(AmiProtocolError):
        encode_message([("Action", "Command"), (key, value)])
