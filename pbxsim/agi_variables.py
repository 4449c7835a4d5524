"""AGI commands on the channel's variables and functions (GET/SET VARIABLE, GET FULL VARIABLE
with ``${...}`` substitution) and on the Asterisk database (DATABASE GET/PUT/DEL/DELTREE).
"""

from __future__ import annotations

import re

from pbxsim.agi_core import ChannelCore
from pbxsim.agi_results import (
    RESULT_SHOWUSAGE,
    RESULT_SUCCESS,
    Handled,
    ok,
)


class VariableCommands(ChannelCore):
    """Variables, dialplan functions and the Asterisk database, as AGI reads and writes them."""

    async def h_get_variable(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        name = argv[2]
        value = self.function_value(name) if name.endswith(")") else self.variable_value(name)
        return RESULT_SUCCESS, ok(0) if value is None else ok(1, value)

    async def h_get_full_variable(self, argv: list[str]) -> Handled:
        if len(argv) not in (4, 5):
            return RESULT_SHOWUSAGE, None
        if len(argv) == 5 and argv[4] != self.channel.name:
            return RESULT_SUCCESS, ok(0)
        return RESULT_SUCCESS, ok(1, self.substitute(argv[3]))

    async def h_set_variable(self, argv: list[str]) -> Handled:
        if len(argv) != 4:
            return RESULT_SHOWUSAGE, None
        self.set_variable(argv[2], argv[3])
        return RESULT_SUCCESS, ok(1)

    def variable_value(self, name: str) -> str | None:
        """pbx_retrieve_variable: a few builtins, then the channel's variables."""
        builtin = {
            "EXTEN": self.channel.exten,
            "CONTEXT": self.channel.context,
            "PRIORITY": str(self.channel.priority),
            "CHANNEL": self.channel.name,
            "UNIQUEID": self.channel.uniqueid,
            "EPOCH": str(self._epoch + int(self.clock.now())),
            "HANGUPCAUSE": str(self._hangup_cause),
        }.get(name)
        return builtin if builtin is not None else self.channel.variables.get(name)

    def function_value(self, expression: str) -> str | None:
        """ast_func_read for the functions a hotline controller uses; None if unknown."""
        match = re.fullmatch(r"([A-Z_]+)\((.*)\)", expression.strip())
        if match is None:
            return None
        func, arg = match[1], match[2].strip().lower()
        if func == "CALLERID":
            return self._callerid_field(arg)
        if func == "CONNECTEDLINE":
            return self._callerid_field(arg)
        if func == "LEN":
            return str(len(match[2]))
        if func == "CHANNEL":
            return {
                "name": self.channel.name,
                "language": self.channel.language,
                "uniqueid": self.channel.uniqueid,
                "linkedid": self.channel.linkedid,
                "state": self.channel.state.desc,
            }.get(arg)
        return None

    def _callerid_field(self, arg: str) -> str | None:
        name, num = self.caller_name or "", self.caller_num or ""
        if arg == "name":
            return name
        if arg in ("num", "number"):
            return num
        if arg == "all":
            return f'"{name}" <{num}>' if name else num
        return None

    def substitute(self, text: str) -> str:
        """ast_str_substitute_variables for ``${...}``: variables and functions, nested."""
        out: list[str] = []
        pos = 0
        while (start := text.find("${", pos)) >= 0:
            end = closing_brace(text, start + 2)
            if end < 0:
                break
            out.append(text[pos:start])
            inner = self.substitute(text[start + 2 : end])
            if inner.endswith(")"):
                out.append(self.function_value(inner) or "")
            else:
                out.append(self.variable_value(inner) or "")
            pos = end + 1
        out.append(text[pos:])
        return "".join(out)

    async def h_database_del(self, argv: list[str]) -> Handled:
        if len(argv) != 4:
            return RESULT_SHOWUSAGE, None
        found = self._astdb.pop((argv[2], argv[3]), None) is not None
        return RESULT_SUCCESS, ok(1 if found else 0)

    async def h_database_deltree(self, argv: list[str]) -> Handled:
        if not 3 <= len(argv) <= 4:
            return RESULT_SHOWUSAGE, None
        prefix = argv[3] if len(argv) == 4 else ""
        doomed = [k for k in self._astdb if k[0] == argv[2] and k[1].startswith(prefix)]
        for key in doomed:
            del self._astdb[key]
        # res_agi answers 0 when it deleted something and 1 when not; kept as Asterisk has it.
        return RESULT_SUCCESS, ok(0 if doomed else 1)

    async def h_database_get(self, argv: list[str]) -> Handled:
        if len(argv) != 4:
            return RESULT_SHOWUSAGE, None
        value = self._astdb.get((argv[2], argv[3]))
        return RESULT_SUCCESS, ok(0) if value is None else ok(1, value)

    async def h_database_put(self, argv: list[str]) -> Handled:
        if len(argv) != 5:
            return RESULT_SHOWUSAGE, None
        self._astdb[(argv[2], argv[3])] = argv[4]
        return RESULT_SUCCESS, ok(1)


def closing_brace(text: str, pos: int) -> int:
    depth = 1
    while pos < len(text):
        if text.startswith("${", pos):
            depth += 1
            pos += 2
            continue
        if text[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    return -1
