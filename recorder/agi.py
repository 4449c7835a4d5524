"""The controller's half of recording: MixMonitor starts the moment a call is answered.

`StartRecording(spool_dir)` is a `CallEntry` ``on_answered`` hook. It runs
``EXEC MixMonitor "<spool_dir>/<call id>.wav"`` (see `recorder.spool.mixmonitor_args`), so
the menu and the conversation with the operator land in one file, both directions mixed, until
the channel hangs up. Asterisk reports the end over AMI (``Hangup``, or ``MixMonitorStop``
after StopMixMonitor) and the recorder worker takes the file from there.

A recording that cannot start never costs the call: the failure is logged and counted, and
the caller goes on to the menu.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hotline.agi.session import NO_SUCH_APPLICATION, AgiSession
from recorder import metrics
from recorder.spool import mixmonitor_args

__all__ = ["StartRecording"]

log = logging.getLogger(__name__)

# Characters the dialplan would take as separators, quoting or variable syntax.
_UNSAFE = frozenset(",|\"'\\$\n\r;")


class StartRecording:
    """``on_answered`` hook: start MixMonitor into the spool directory for this call."""

    def __init__(self, spool_dir: Path) -> None:
        # Resolved once: Asterisk needs an absolute path, and the controller's working
        # directory must not matter after start-up.
        self.spool_dir = Path(spool_dir).resolve()
        unsafe = sorted(set(str(self.spool_dir)) & _UNSAFE)
        if unsafe:
            # MixMonitor would split the path at a comma and read the rest as options.
            raise ValueError(
                f"recorder.spool_dir {str(self.spool_dir)!r} contains {''.join(unsafe)!r}, "
                "which Asterisk application arguments cannot carry"
            )

    async def __call__(self, session: AgiSession) -> None:
        try:
            args = mixmonitor_args(session.call_id, self.spool_dir)
        except ValueError:
            # The uniqueid is not usable as a file name: recording it would be unsafe.
            log.error("call not recorded: unusable call id for a spool file name")
            metrics.RECORDING_STARTS.labels("bad_call_id").inc()
            return
        result = await session.exec("MixMonitor", *args)
        if result == NO_SUCH_APPLICATION:
            log.error("call not recorded: Asterisk has no MixMonitor (app_mixmonitor loaded?)")
            metrics.RECORDING_STARTS.labels("no_application").inc()
        elif result < 0:
            log.error("call not recorded: MixMonitor failed", extra={"result": result})
            metrics.RECORDING_STARTS.labels("failed").inc()
        else:
            metrics.RECORDING_STARTS.labels("started").inc()
