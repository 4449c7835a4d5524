"""A scripted stand-in for the simulator's channel, for the dialplan interpreter's tests: its
applications do what the test says (by default nothing), and it records every step, every
application run, every function written and every variable set. Its clock (``${EPOCH}``)
stands still except in ``Wait()``, which moves it on by the seconds waited."""

from __future__ import annotations

from collections.abc import Callable

from pbxsim.dialplan import CONTINUE, HANGUP, AppResult, ChannelVariables, DialplanStep

CALLER = "79161234567"

App = Callable[["ScriptedChannel", str], AppResult]


class ScriptedChannel:
    """A DialplanChannel whose applications do what the test says (by default: nothing)."""

    def __init__(
        self,
        name: str = "PJSIP/trunk-00000001",
        *,
        apps: dict[str, App] | None = None,
        variables: dict[str, str] | None = None,
        functions: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.variables = ChannelVariables(variables)
        self.functions = {"CALLERID(num)": CALLER, **(functions or {})}
        self.scripts = apps or {}
        self.steps: list[DialplanStep] = []
        self.ran: list[tuple[str, str]] = []
        self.written: list[tuple[str, str, str]] = []
        self.varsets: list[tuple[str, str]] = []
        self.epoch = 1_700_000_000

    def get_variable(self, name: str) -> str | None:
        if name == "EPOCH":
            return str(self.epoch)
        return self.name if name == "CHANNEL" else self.variables.get(name)

    def set_variable(self, name: str, value: str) -> None:
        self.varsets.append((name, value))
        self.variables.set(name, value)

    def push_variable(self, name: str, value: str) -> None:
        self.varsets.append((f"LOCAL({name})", value))
        self.variables.push(name, value)

    def pop_variable(self, name: str) -> None:
        self.variables.pop(name)

    def read_function(self, name: str, args: str) -> str | None:
        return self.functions.get(f"{name}({args})")

    def write_function(self, name: str, args: str, value: str) -> bool:
        if name not in ("CHANNEL", "CONFBRIDGE", "PJSIP_HEADER", "CALLERID"):
            return False
        self.written.append((name, args, value))
        return True

    def newexten(self, step: DialplanStep) -> None:
        self.steps.append(step)

    async def run_app(self, app: str, data: str) -> AppResult:
        self.ran.append((app, data))
        script = self.scripts.get(app)
        if script is None and app == "Wait":
            self.epoch += int(float(data or "0"))
        return script(self, data) if script else CONTINUE

    def trail(self) -> list[tuple[str, str, int, str, str]]:
        return [
            (s.address.context, s.address.exten, s.address.priority, s.app, s.data)
            for s in self.steps
        ]


def agi(**result: str) -> App:
    """An AGI that leaves these variables (AGISTATUS, HOTLINE_DID, ...) and returns."""

    def run(channel: ScriptedChannel, data: str) -> AppResult:
        for name, value in result.items():
            channel.set_variable(name, value)
        return HANGUP if result.get("AGISTATUS") == "HANGUP" else CONTINUE

    return run


def sets(**variables: str) -> App:
    def run(channel: ScriptedChannel, data: str) -> AppResult:
        for name, value in variables.items():
            channel.set_variable(name, value)
        return CONTINUE

    return run
