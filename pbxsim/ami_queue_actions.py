"""The manager actions on queues and the CLI: Command (``core show uptime``, ``queue show``),
QueueSummary, QueueStatus, QueueAdd, QueueRemove, QueuePause.
"""

from __future__ import annotations

import logging

from hotline.ami.protocol import (
    AmiMessage,
)
from pbxsim.ami_core import AmiServerCore
from pbxsim.ami_session import (
    AmiSession,
    Handler,
    action_id_headers,
    ami_true,
    int_header,
    spell_duration,
)
from pbxsim.queue_state import Queue

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]


class QueueActions(AmiServerCore):
    """The actions a controller uses to watch and staff the queues."""

    def _action_handlers(self) -> dict[str, Handler]:
        return {
            **super()._action_handlers(),
            "command": self._command,
            "queuesummary": self._queue_summary,
            "queuestatus": self._queue_status,
            "queueadd": self._queue_add,
            "queueremove": self._queue_remove,
            "queuepause": self._queue_pause,
        }

    async def _command(self, session: AmiSession, message: AmiMessage) -> None:
        command = " ".join((message.get("Command") or "").split())
        if not command:
            self._respond(session, message, "Error", ("Message", "No command provided"))
            return
        lines = self._cli(command)
        status = "Success"
        if lines is None:
            status = "Error"
            lines = [
                f"No such command '{command}' "
                f"(type 'core show help {command}' for other possible commands)"
            ]
        output = [("Output", line) for line in lines]
        self._respond(session, message, status, ("Message", "Command output follows"), *output)

    def _cli(self, command: str) -> list[str] | None:
        """The few CLI commands the simulator knows; None for the others."""
        words = command.lower().split()
        if words == ["core", "show", "version"]:
            return [self.version]
        if words[:3] == ["core", "show", "uptime"]:
            return self._cli_uptime(words[3:] == ["seconds"])
        if words[:2] == ["queue", "show"] and len(words) <= 3 and self.queues is not None:
            return self._cli_queue_show(command.split()[2] if len(words) == 3 else None)
        return None

    def _cli_uptime(self, seconds: bool) -> list[str]:
        up, reload = self.clock.uptime(), self.clock.since_reload()
        if seconds:
            return [f"System uptime: {up}", f"Last reload: {reload}"]
        return [f"System uptime: {spell_duration(up)}", f"Last reload: {spell_duration(reload)}"]

    def _cli_queue_show(self, name: str | None) -> list[str]:
        assert self.queues is not None
        now = self.clock.epoch()
        if name is not None:
            queue = self.queues.queue(name)
            return queue.cli_lines(now) if queue else [f"No such queue: {name}."]
        queues = self.queues.all()
        return [line for q in queues for line in q.cli_lines(now)] or ["No queues."]

    def _selected_queues(self, message: AmiMessage) -> list[Queue]:
        wanted = message.get("Queue") or ""
        queues = self.queues.all() if self.queues is not None else []
        return [q for q in queues if not wanted or q.name == wanted]

    async def _queue_summary(self, session: AmiSession, message: AmiMessage) -> None:
        now, action_id = self.clock.epoch(), action_id_headers(message)
        items = [
            ("QueueSummary", [*q.summary(now), *action_id]) for q in self._selected_queues(message)
        ]
        self._send_list(
            session, message, "Queue summary will follow", "QueueSummaryComplete", items
        )

    async def _queue_status(self, session: AmiSession, message: AmiMessage) -> None:
        now, action_id = self.clock.epoch(), action_id_headers(message)
        member_filter = message.get("Member") or ""
        items: list[tuple[str, Headers]] = []
        for q in self._selected_queues(message):
            items.append(("QueueParams", [*q.params(), *action_id]))
            for m in q.members.values():
                if not member_filter or member_filter in (m.interface, m.name):
                    items.append(("QueueMember", [*m.status_entry(), *action_id]))
            items += [("QueueEntry", [*entry, *action_id]) for entry in q.entries(now)]
        self._send_list(session, message, "Queue status will follow", "QueueStatusComplete", items)

    async def _queue_add(self, session: AmiSession, message: AmiMessage) -> None:
        queue, interface = message.get("Queue") or "", message.get("Interface") or ""
        if not queue or not interface:
            missing = "Queue" if not queue else "Interface"
            self._respond(session, message, "Error", ("Message", f"'{missing}' not specified."))
            return
        result = (
            self.queues.add_member(
                queue,
                interface,
                name=message.get("MemberName") or "",
                penalty=int_header(message.get("Penalty"), 0),
                paused=ami_true(message.get("Paused")),
                reason=message.get("Reason") or "",
                state_interface=message.get("StateInterface") or "",
            )
            if self.queues
            else "no-queue"
        )
        status, text = {
            "added": ("Success", "Added interface to queue"),
            "exists": ("Error", "Unable to add interface: Already there"),
            "no-queue": ("Error", "Unable to add interface to queue: No such queue"),
        }[result]
        self._respond(session, message, status, ("Message", text))

    async def _queue_remove(self, session: AmiSession, message: AmiMessage) -> None:
        queue, interface = message.get("Queue") or "", message.get("Interface") or ""
        if not queue or not interface:
            text = "Need 'Queue' and 'Interface' parameters."
            self._respond(session, message, "Error", ("Message", text))
            return
        result = self.queues.remove_member(queue, interface) if self.queues else "no-queue"
        status, text = {
            "removed": ("Success", "Removed interface from queue"),
            "not-there": ("Error", "Unable to remove interface: Not there"),
            "no-queue": ("Error", "Unable to remove interface from queue: No such queue"),
            "not-dynamic": ("Error", "Member not dynamic"),
        }[result]
        self._respond(session, message, status, ("Message", text))

    async def _queue_pause(self, session: AmiSession, message: AmiMessage) -> None:
        interface, paused = message.get("Interface") or "", message.get("Paused") or ""
        if not interface or not paused:
            text = "Need 'Interface' and 'Paused' parameters."
            self._respond(session, message, "Error", ("Message", text))
            return
        pause = ami_true(paused)
        found = self.queues is not None and self.queues.pause_member(
            interface, pause, reason=message.get("Reason") or "", queue=message.get("Queue")
        )
        if not found:
            self._respond(session, message, "Error", ("Message", "Interface not found"))
            return
        text = "Interface paused successfully" if pause else "Interface unpaused successfully"
        self._respond(session, message, "Success", ("Message", text))
