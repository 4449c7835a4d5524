"""ChanSpy on the answered leg of an ``Originate`` with ``Application: ChanSpy`` (a
supervisor listening), and manager.c's check of the applications an Originate may run.

app_chanspy.c (Asterisk 22): ``ChanSpy([chanprefix][,options])``. With option ``u`` the first
argument is one channel's name or uniqueid (``ast_channel_get_by_name`` finds either): no
such channel ends ChanSpy at once, and the pbx hangs the spying channel up. Otherwise the
first channel whose name starts with the prefix is spied on (a prefix nobody matches keeps
ChanSpy scanning; not simulated beyond staying up). Spying starts with ``ChanSpyStart``
(the spyer's channel block with the ``Spyer`` prefix, then the spyee's with ``Spyee``); it ends
with ``ChanSpyStop`` when either side hangs up (just before that side's ``Hangup``), and with
option ``E`` the spyee's hang-up ends ChanSpy, so the spying channel hangs up after it
(ami-chanspy.txt). An unknown option letter is ignored, as ``ast_app_parse_options`` does
(with a warning in Asterisk's log).

manager.c's ``is_originate_app_permitted``: an Originate whose Application contains one of
``agi dbdeltree exec externalivr mixmonitor originate reload system`` (case-insensitive), or
whose Data contains ``CURL DB EVAL FILE ODBC REALTIME SHELL`` (case-sensitive), needs the
``system`` write class; ``Queue`` with its AGI argument needs ``agi`` or ``system``. Refused:
``Originate Access Forbidden: app or data blacklisted``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pbxsim.ami_channels import ChannelTracker

__all__ = ["CHANSPY_LETTERS", "ChanSpies", "originate_app_permitted"]

Headers = list[tuple[str, str]]

# app_chanspy.c's spy_opts: every option letter ChanSpy knows.
CHANSPY_LETTERS: Final = frozenset("bBcdDeEglnNoqrsSuvwWxX")
_APPS_NEEDING_SYSTEM: Final = (
    "agi", "dbdeltree", "exec", "externalivr", "mixmonitor", "originate", "reload", "system",
)  # fmt: skip
_DATA_NEEDING_SYSTEM: Final = ("CURL", "DB", "EVAL", "FILE", "ODBC", "REALTIME", "SHELL")


def originate_app_permitted(app: str, data: str, may_write: Callable[[str], bool]) -> bool:
    """manager.c's table, first match decides (`may_write(class)`: the account's write)."""
    lowered = app.lower()
    for name in _APPS_NEEDING_SYSTEM:
        if name in lowered:
            return may_write("system")
    if "queue" in lowered:
        fields = data.split(",")
        if len(fields) > 5 and fields[5]:  # queuename,options,url,announce,timeout,AGI
            return may_write("agi") or may_write("system")
    for name in _DATA_NEEDING_SYSTEM:
        if name in data:
            return may_write("system")
    return True


@dataclass
class _Spy:
    spyer: str
    spyee: str
    exit_on_hangup: bool
    blocks: Headers  # both channels as ChanSpyStart showed them (ChanSpyStop repeats them)


class ChanSpies:
    """The spies running on this PBX: started on an answered Originate leg, ended by a hang-up."""

    def __init__(
        self,
        channels: ChannelTracker,
        emit: Callable[[str, Headers], None],
        hang_up: Callable[[str], bool],
    ) -> None:
        self._channels = channels
        self._emit = emit
        self._hang_up = hang_up
        self._spies: list[_Spy] = []

    def start(self, spyer: str, data: str) -> None:
        """ChanSpy(data) runs on the answered channel `spyer`."""
        spec, _, options = data.partition(",")
        letters = {c for c in options if c in CHANSPY_LETTERS}
        spec = "" if spec == "all" else spec
        target = None
        if "u" in letters:
            view = self._channels.find(spec) if spec else None
            target = view.block[0][1] if view is not None else None
            if target is None:  # ChanSpy returns -1: the pbx hangs the spying channel up
                self._hang_up(spyer)
                return
        else:
            target = self._channels.first_named(spec, besides=spyer)
            if target is None:
                return  # scanning for a channel to appear: the phone stays up
        spy = _Spy(spyer, target, "E" in letters, self._blocks(spyer, target))
        self._spies.append(spy)
        self._emit("ChanSpyStart", spy.blocks)

    def _blocks(self, spyer: str, spyee: str) -> Headers:
        headers: Headers = []
        for prefix, name in (("Spyer", spyer), ("Spyee", spyee)):
            view = self._channels.find(name)
            if view is not None:
                headers += [(prefix + key, value) for key, value in view.block]
        return headers

    def before(self, event: str, headers: Headers) -> list[str]:
        """Precedes each event the PBX emits: a hang-up of either side ends the spy, and
        ``ChanSpyStop`` comes before that ``Hangup`` (the audiohook is detached while the
        channel hangs up, ami-chanspy.txt). Returns the spying channels to hang up once the
        spyee's Hangup is out (option E: after it, as Asterisk does)."""
        if event != "Hangup" or not self._spies:
            return []
        channel = dict(headers).get("Channel", "")
        ended = []
        for spy in [s for s in self._spies if channel in (s.spyer, s.spyee)]:
            self._spies.remove(spy)
            self._emit("ChanSpyStop", spy.blocks)
            if channel == spy.spyee and spy.exit_on_hangup:
                ended.append(spy.spyer)
        return ended

    def spying(self) -> list[tuple[str, str]]:
        """(spyer, spyee) of every spy now."""
        return [(s.spyer, s.spyee) for s in self._spies]
