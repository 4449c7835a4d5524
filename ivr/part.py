"""The voice menus in a running controller: every number's menu, the FastAGI entry that runs
them, and the watcher that brings edited menu files to new calls.

`MenuService.build` loads the menus with the ports the composition root plugs in: the queue
(the ACD, or Asterisk's Queue() without it), callback booking, and what runs when a call is
answered (the recorder's MixMonitor). A menu file with mistakes is left out with its
file:line problems logged; the others serve.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hotline.agi.hooks import AnsweredHook
from hotline.store.db import CallLog
from ivr.entry import CallEntry, CallFinished, base_services
from ivr.menu.library import load_library
from ivr.menu.model import (
    AppCodes,
    CallbackRequests,
    CallContacts,
    OperatorQueue,
    VoiceMessages,
)
from ivr.menu.watch import MenuWatcher
from ivr.settings import IvrSettings

log = logging.getLogger(__name__)

# The FastAGI script of every hotline call ([from-pstn] in asterisk-conf/extensions.conf).
ENTRY_SCRIPT = "hotline"


@dataclass
class MenuService:
    """The menus of one controller node."""

    entry: CallEntry  # the ``hotline`` FastAGI script
    watcher: MenuWatcher

    @classmethod
    def build(
        cls,
        settings: IvrSettings,
        call_log: CallLog,
        node: str,
        *,
        queue: OperatorQueue | None,
        callbacks: CallbackRequests | None,
        on_answered: Sequence[AnsweredHook],
        contacts: CallContacts | None = None,
        messages: VoiceMessages | None = None,
        recordings_dir: str | None = None,
        intents: AppCodes | None = None,
        on_finished: Sequence[CallFinished] = (),
    ) -> MenuService:
        """`messages` takes the voice messages in hand, written to `recordings_dir` (default:
        ``[ivr] recordings_dir``; the controller names the recorder's spool when it is on)."""
        services = replace(
            base_services(settings, call_log, queue),
            callbacks=callbacks,
            contacts=contacts,
            messages=messages,
            intents=intents,
        )
        if recordings_dir is not None:
            services = replace(services, recordings_dir=recordings_dir)
        library, problems = load_library(settings.dialplans_dir, services, settings.general_number)
        if problems:
            log.error("some menus were rejected", extra={"rejected": len(problems)})
        entry = CallEntry(
            call_log,
            node,
            settings=settings,
            library=library,
            on_answered=on_answered,
            queue=queue,
            on_finished=on_finished,
        )
        return cls(entry, MenuWatcher.from_settings(entry, settings))

    def start(self) -> None:
        self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.close()
