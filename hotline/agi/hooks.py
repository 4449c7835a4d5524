"""What other parts may run at a moment of a call, without knowing who runs the call.

`AnsweredHook`: a coroutine given the call's `AgiSession` right after the line is answered,
before the menu (the recorder starts MixMonitor there). The voice menu's entry point
(`ivr.entry.CallEntry(on_answered=...)`) runs them; the recorder provides one
(`recorder.agi.StartRecording`); neither needs the other to name the type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hotline.agi.session import AgiSession

__all__ = ["AnsweredHook"]

AnsweredHook = Callable[[AgiSession], Awaitable[None]]
