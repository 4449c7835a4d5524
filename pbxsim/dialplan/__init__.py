"""The simulator's Asterisk dialplan: extensions.conf read and run as Asterisk 22 runs it.

`parser.load_dialplan` reads the file (and its ``#include``s) into a `model.Dialplan`;
`interpreter.DialplanInterpreter` runs it on channels that implement
`channel.DialplanChannel`: the interpreter does the control flow (NoOp, Set, Goto, GotoIf,
Gosub, GosubIf, Return, ExecIf, Hangup), substitution (`substitute`, `expressions`) and
pattern matching (`patterns`); the channel does variables, functions and every other
application (AGI, Dial, Queue, Playback, ...). `arguments` splits application data the way
Asterisk's applications do. Standard library only.
"""

from pbxsim.dialplan.channel import (
    CONTINUE,
    HANGUP,
    AppResult,
    ChannelVariables,
    DialplanChannel,
    DialplanStep,
)
from pbxsim.dialplan.errors import (
    DialplanError,
    DialplanLoopError,
    DialplanSyntaxError,
    ExpressionError,
    NoSuchExtension,
    SourceLine,
)
from pbxsim.dialplan.interpreter import DialplanInterpreter
from pbxsim.dialplan.model import Dialplan, ExtenAddress
from pbxsim.dialplan.outcome import DialplanEnd, SubroutineResult
from pbxsim.dialplan.parser import load_dialplan

__all__ = [
    "CONTINUE",
    "HANGUP",
    "AppResult",
    "ChannelVariables",
    "Dialplan",
    "DialplanChannel",
    "DialplanEnd",
    "DialplanError",
    "DialplanInterpreter",
    "DialplanLoopError",
    "DialplanStep",
    "DialplanSyntaxError",
    "ExpressionError",
    "ExtenAddress",
    "NoSuchExtension",
    "SourceLine",
    "SubroutineResult",
    "load_dialplan",
]
