"""The dialplan interpreter's parts against Asterisk 22's rules: pattern matching and order,
priorities, substitution, expressions, argument splitting, channel variables, and the
control-flow applications (Gosub frames, GosubIf, ExecIf, LOCAL, GLOBAL, relative Goto)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dialplan_channel import ScriptedChannel, sets

from pbxsim.dialplan import ChannelVariables, DialplanError, DialplanInterpreter, load_dialplan
from pbxsim.dialplan.arguments import app_args, app_options, callee_gosub, split_goto
from pbxsim.dialplan.expressions import evaluate
from pbxsim.dialplan.patterns import extension_matches, extension_sort_key
from pbxsim.dialplan.substitute import substitute


def test_extensions_sort_as_asterisk_sorts_them() -> None:
    names = ["_X.", "_XXXX", "_NXX", "fallback", "_X!", "88001000001", "_8800XXXXXXX",
             "_[12]X", "_ZX", "*81", "_*82X"]  # fmt: skip
    assert sorted(names, key=extension_sort_key) == [
        "*81", "88001000001", "fallback",
        "_*82X", "_8800XXXXXXX", "_[12]X", "_NXX", "_ZX", "_XXXX", "_X.", "_X!",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "exten", "matches"),
    [
        ("_X.", "1", False),  # '.' is one or more
        ("_X.", "12", True),
        ("_X!", "1", True),  # '!' is zero or more
        ("_X!", "", False),
        ("_NXX", "123", False),
        ("_NXX", "223", True),
        ("_ZXX", "023", False),
        ("_[1-3]", "2", True),
        ("_[1-3]", "4", False),
        ("_[1-3-]", "-", False),  # the number's own '-' are decoration too
        ("_X[a-c]", "1b", True),
        ("_[]5", "5", True),  # an empty set is skipped
        ("_88-00-XXX", "8800123", True),  # '-' is decoration
        ("880-01", "88001", True),
        ("_+7800XXXXXXX", "+78001234567", True),
        ("_7800XXXXXXX", "+78001234567", False),
        ("_8800XXXXXXX", "880012345678", False),
        ("_*82X", "*825", True),
        ("_*82X", "*82", False),
        ("s", "S", False),
        ("_x.", "12", True),
    ],
)
def test_pattern_matching(name: str, exten: str, matches: bool) -> None:
    assert extension_matches(name, exten) is matches


def test_priorities_n_s_plus_labels_and_hints(tmp_path: Path) -> None:
    path = tmp_path / "extensions.conf"
    path.write_text(
        "[general]\nstatic=yes\n[a]\n"
        "exten => 101,1,NoOp(a) ; a comment\n"
        "exten => 102,s,NoOp(b)\n"
        "exten => 102,n+2,NoOp(c)\n"
        "exten => 104,1(start),NoOp(\\;semicolon)\n"
        "exten => 104,start+1,NoOp()\n"
        ";-- a block\ncomment --;exten => 105,1,Answer\n"
        "exten => 1001,hint,PJSIP/1001\n"
    )
    context = load_dialplan(path).contexts["a"]
    numbers = {ext.name: sorted(ext.priorities) for ext in context.extensions}
    assert numbers == {"101": [1], "102": [1, 4], "104": [1, 2], "105": [1], "1001": []}
    start = context.extension("104")
    assert start is not None and start.labels == {"start": 1}
    assert start.priorities[1].data == ";semicolon"
    assert context.extension("105").priorities[1].app == "Answer"  # type: ignore[union-attr]
    assert context.extension("1001").hint == "PJSIP/1001"  # type: ignore[union-attr]


async def test_a_literal_extension_without_the_priority_lets_the_patterns_through(
    tmp_path: Path,
) -> None:
    path = tmp_path / "extensions.conf"
    path.write_text(
        "[a]\nexten => 100,1,NoOp(literal)\n"
        "exten => _X.,1,NoOp(pattern)\n same => n,NoOp(pattern 2)\n"
    )
    channel = ScriptedChannel()
    end = await DialplanInterpreter.from_file(path).run(channel, "a", "100")
    assert [step.data for step in channel.steps] == ["literal", "pattern 2"]
    assert end.reason == "fallthrough"


class _Values:
    def __init__(self, **values: str) -> None:
        self.values = values

    def variable(self, name: str) -> str | None:
        return self.values.get(name)

    def function(self, name: str, args: str) -> str:
        if name == "CALLERID" and args == "num":
            return "79161234567"
        raise DialplanError(f"no {name}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8${EXTEN:1}", "88002000002"),
        ("${X:-4}", "cdef"),
        ("${X:1:2}", "bc"),
        ("${X:-3:-1}", "de"),
        ("${X:1:-10}", ""),
        ("${X:10}", ""),
        ("${X::2}", "abcdef"),  # sscanf stops at the empty offset: the whole value
        ("${ARG${N}}", "first"),
        ("${CALLERID(num):1}", "9161234567"),
        ("$[${N} + 1]x", "2x"),
        ('$["${UNSET}" = ""]', "1"),
        ("$$x a$b ${UNSET}.", "$$x a$b ."),
        ("pause&reason=${EXTEN:3}", "pause&reason=02000002"),
    ],
)
def test_substitution(text: str, expected: str) -> None:
    values = _Values(EXTEN="78002000002", X="abcdef", N="1", ARG1="first")
    assert substitute(text, values) == expected


def test_an_unclosed_substitution_is_an_error() -> None:
    with pytest.raises(DialplanError, match="missing"):
        substitute("${X", _Values())


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ('"FAILURE" = "FAILURE"', "1"),
        ('"" = ""', "1"),
        ('"SUCCESS" = "FAILURE"', "0"),
        ('"FAILURE" = FAILURE', "0"),  # quotes are part of the string
        ('"a" != "b"', "1"),
        ("0 = 0", "1"),
        ("10 < 9", "0"),
        ('"10" < "9"', "1"),  # quoted: compared as strings
        ("1 & 0", "0"),
        ("2 & 3", "2"),
        ("0 | b", "b"),
        ("a | b", "a"),
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("-5 + 2", "-3"),
        ("7 / 2", "3.5"),
        ("1 ? yes :: no", "yes"),
        ("!0", "1"),
        ('abc : "a(b)c"', "b"),
        ("x ~~ y", "xy"),
    ],
)
def test_expressions(expression: str, value: str) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression", [" = 0", '"x', "1 +", "a - b", "LEN(x)", "1 2", "(1"])
def test_expression_errors(expression: str) -> None:
    with pytest.raises(DialplanError):
        evaluate(expression)


def test_argument_splitting() -> None:
    assert app_args("hotline-general,t,,,1800") == ["hotline-general", "t", "", "", "1800"]
    assert app_args("") == [] and app_args("a,") == ["a", ""]
    assert app_args('a,"b,c",d') == ["a", "b,c", "d"]
    assert app_args('a,"b,c"', raw=True) == ["a", '"b,c"']
    assert app_args("f(a,b),[x,y],c") == ["f(a,b)", "[x,y]", "c"]
    assert app_args("a\\,b,c") == ["a,b", "c"]
    assert app_args("x?y?z", "?", limit=2) == ["x", "y?z"]
    assert app_options("gU(x^1)b(h^s^1)t") == {"g": "", "U": "x^1", "b": "h^s^1", "t": ""}
    with pytest.raises(ValueError, match="missing"):
        app_options("U(x")
    assert split_goto("c,e,1") == ("c", "e", "1") and split_goto("busy") == (None, None, "busy")
    assert callee_gosub("ctx") == "ctx,s,1"
    assert callee_gosub("ctx^a^b") == "ctx,s,1(a,b)"


def test_channel_variables_follow_asterisks_naming() -> None:
    variables = ChannelVariables({"_HOTLINE_CALL": "1", "__DEEP": "2", "PLAIN": "3"})
    assert variables.get("HOTLINE_CALL") == "1"
    variables.set("HOTLINE_CALL", "4")  # replaces the prefixed one
    assert variables.inherited() == {"__DEEP": "2"}  # set again without _: not inherited
    variables.push("PLAIN", "pushed")
    assert variables.get("PLAIN") == "pushed"
    variables.pop("PLAIN")
    assert variables.get("PLAIN") == "3"
    assert variables.as_dict() == {"HOTLINE_CALL": "4", "DEEP": "2", "PLAIN": "3"}


SUBROUTINES = """\
[globals]
COUNT=0

[main]
exten => s,1,Gosub(sub,s,1(a,b,c))
 same => n,NoOp(after ${GOSUB_RETVAL} ${ARG1})
 same => n,GosubIf($[1 = 1]?sub,short,1(x):sub,s,1(y))
 same => n,ExecIf($[${GOSUB_RETVAL} = x]?Set(GLOBAL(COUNT)=$[${GLOBAL(COUNT)} + 1]))
 same => n,ExecIf(0?NoOp(no):Playback(yes))
 same => n,Goto(+2)
 same => n,NoOp(skipped)
 same => n,Hangup(17)

[sub]
exten => s,1,NoOp(${ARGC}: ${ARG1} ${ARG2} ${ARG3})
 same => n,Gosub(short,1(inner))
 same => n,Set(LOCAL(mine)=${ARG1})
 same => n,Return(done)
exten => short,1,NoOp(${ARGC}: ${ARG1} [${ARG2}] [${ARG3}])
 same => n,Return(${ARG1})
"""


async def test_gosub_frames_gosubif_execif_local_global_and_relative_goto(
    tmp_path: Path,
) -> None:
    path = tmp_path / "extensions.conf"
    path.write_text(SUBROUTINES)
    interpreter = DialplanInterpreter.from_file(path)
    channel = ScriptedChannel(apps={"Playback": sets(PLAYBACKSTATUS="SUCCESS")})
    end = await interpreter.run(channel, "main", "s")
    data = [(step.app, step.data) for step in channel.steps]
    assert data[:6] == [
        ("Gosub", "sub,s,1(a,b,c)"),
        ("NoOp", "3: a b c"),
        ("Gosub", "short,1(inner)"),
        ("NoOp", "1: inner [] []"),  # the outer frame's ARG2 and ARG3 are masked
        ("Return", "inner"),
        ("Set", "LOCAL(mine)=a"),
    ]
    assert ("NoOp", "after done ") in data  # the frame's ARG1 is gone after Return
    assert ("NoOp", "1: x [] []") in data
    assert ("NoOp", "skipped") not in data
    assert channel.ran == [("Playback", "yes")]
    assert interpreter.globals["COUNT"] == "1"
    assert channel.variables.get("mine") is None
    assert (end.reason, end.cause) == ("hangup", 17)
