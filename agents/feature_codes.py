"""Phone feature codes: an operator logs in, pauses, gets ready and logs out from the softphone.

The ``[operators]`` context of asterisk-conf/extensions.conf sends the codes here over FastAGI
(``AGI(agi://CONTROLLER/operator-feature?code=...)``)::

    *81      log in (and ready)              code=login
    *82      pause, reason «перерыв»         code=pause
    *82<N>   pause with reason N             code=pause&reason=N   (see PAUSE_REASONS)
    *83      ready: end a pause or wrap-up   code=ready
    *84      log out                         code=logout

Who is asking comes from the calling channel, never from the dialled digits: ``agi_channel``
``PJSIP/1001-0000001a`` is the device ``PJSIP/1001``, which dialplans/operators.yaml gives to one
operator. A phone no operator has, or a channel name that is not a softphone's, is refused.
The transition itself is the operator HTTP API's own action (`agents.http.OPERATOR_ACTIONS`),
so both paths validate and store it the same way, and, as there, every code is audited before
it is done (the operator as actor and target, ``via: phone``, the device); an audit log that
cannot take it makes the code fail (``error``) with nothing changed.

Logging in (*81) asks for the operator's PIN first (``GET DATA hotline/operator-enter-pin``,
digits then #): the PIN the operator's web session shows at ``/me`` (`hotline.accounts`). A
phone alone, or a forged FastAGI session naming a seat, logs nobody in. The check is the
`OperatorPins` port the root wires to the accounts (throttled there like a password); a wrong
or missing PIN changes nothing and is ``bad-pin``.

The operator hears a Russian prompt (``hotline/operator-*``, prompts/ru.yaml): the confirmation,
or why not; a refused move plays ``operator-refused-<state>``, whose text is the one
`routing.operators.InvalidTransition` shows on the operator's screen. The outcome is left in
channel variables for the dialplan and Asterisk's logs: ``OPERATOR_FEATURE_RESULT`` (``ok``,
``refused``, ``unknown-phone``, ``bad-code``, ``bad-pin`` or ``error``) and ``OPERATOR_STATE``
(the state after the code; empty when the phone is unknown).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Final, Protocol

from agents.http import OPERATOR_ACTIONS, BadRequest
from hotline.agi.session import AgiSession
from hotline.audit import AuditLog
from hotline.auth import Actor, Role
from routing.node import AcdNode
from routing.operators import InvalidTransition

__all__ = ["FEATURE_SCRIPT", "PAUSE_REASONS", "FeatureCodes", "OperatorPins", "device_of_channel"]

log = logging.getLogger("hotline.agents")

# The FastAGI script name the [operators] context calls (asterisk-conf/extensions.conf).
FEATURE_SCRIPT = "operator-feature"

# *82<digit>: the pause reasons an operator can give from the phone (the HTTP API takes any
# text). Plain *82 is a short break.
PAUSE_REASONS: Mapping[str, str] = {"1": "обед", "2": "перерыв", "3": "обучение"}
DEFAULT_PAUSE_REASON = "перерыв"

# code= -> (the HTTP API's action, the prompt confirming it)
_CODES: Mapping[str, tuple[str, str]] = {
    "login": ("login", "operator-logged-in"),
    "pause": ("pause", "operator-paused"),
    "ready": ("ready", "operator-ready"),
    "logout": ("logout", "operator-logged-out"),
}

# A softphone's channel: device, '-', Asterisk's 8 hex digit sequence number. Local channels
# (``Local/x@ctx-00000001;1``) and anything else do not match, so they are never an operator.
_CHANNEL = re.compile(r"^(?P<device>[A-Za-z]+/[A-Za-z0-9_.@-]{1,80})-[0-9a-fA-F]{8}$")

RESULT_VARIABLE = "OPERATOR_FEATURE_RESULT"
# How long the phone waits for the PIN, and the most digits it takes (# ends it sooner).
PIN_TIMEOUT_MS: Final = 10_000
PIN_MAX_DIGITS: Final = 12
STATE_VARIABLE = "OPERATOR_STATE"


def device_of_channel(channel: str) -> str | None:
    """``PJSIP/1001-0000001a`` -> ``PJSIP/1001``; None for a name no softphone would have."""
    found = _CHANNEL.match(channel)
    return found["device"] if found else None


def refusal_prompt(refused: InvalidTransition) -> str:
    """The prompt saying `refused.message_ru`: ``operator-refused-<state, with dashes>``."""
    return "operator-refused-" + refused.current.value.replace("_", "-")


class OperatorPins(Protocol):
    """Is `pin` the phone PIN of `operator_id`? (`where`: the phone's device, for throttling
    and the log.) `hotline.accounts.service.Accounts` is one."""

    async def check_pin(self, operator_id: str, pin: str, where: str) -> bool: ...


class FeatureCodes:
    """The ``operator-feature`` FastAGI script over one node's operators."""

    def __init__(self, node: AcdNode, pins: OperatorPins, audit: AuditLog) -> None:
        self._node = node
        self._pins = pins
        self._audit = audit
        # Devices compared case-insensitively, as AMI's device states are (agents.devices).
        self._by_device = {op.spec.device.upper(): op.id for op in node.acd.operators.values()}

    async def __call__(self, session: AgiSession) -> None:
        await session.answer()
        channel = session.env.get("agi_channel", "")
        device = device_of_channel(channel)
        op_id = self._by_device.get(device.upper()) if device else None
        if op_id is None:
            log.warning("feature code from a phone no operator has: %r", channel[:100])
            await self._finish(session, "unknown-phone", "", "operator-not-allowed")
            return
        query = session.request.query
        if query.get("code") == "login" and not await self._pin_given(session, op_id, device):
            await self._finish(session, "bad-pin", self._state(op_id), "operator-wrong-pin")
            return
        result, prompt = await self._apply(op_id, query, device or "")
        await self._finish(session, result, self._state(op_id), prompt)

    def _state(self, op_id: str) -> str:
        return self._node.acd.operators[op_id].state.value

    async def _pin_given(self, session: AgiSession, op_id: str, device: str | None) -> bool:
        entered = await session.get_data(
            "hotline/operator-enter-pin", PIN_TIMEOUT_MS, PIN_MAX_DIGITS
        )
        pin = str(entered)
        if not (pin.isascii() and pin.isdigit()):
            log.warning("operator %s: log-in code without a PIN", op_id)
            return False
        good = await self._pins.check_pin(op_id, pin, f"phone:{device}")
        if not good:
            log.warning("operator %s: log-in code with a wrong PIN", op_id)
        return good

    async def _apply(self, op_id: str, query: Mapping[str, str], device: str) -> tuple[str, str]:
        """(result, prompt) of one code for `op_id`, the state change done when "ok"."""
        code = query.get("code", "")
        if code not in _CODES:
            return "bad-code", "operator-bad-code"
        action, confirmation = _CODES[code]
        body: dict[str, str] = {}
        if code == "pause":
            reason = PAUSE_REASONS.get(query.get("reason", ""), None)
            if "reason" in query and reason is None:
                return "bad-code", "operator-bad-code"
            body["reason"] = reason or DEFAULT_PAUSE_REASON
        try:
            await self._record(op_id, action, device, body)
            await OPERATOR_ACTIONS[action](self._node, op_id, body)
        except InvalidTransition as refused:
            log.info("operator %s: %s refused (%s)", op_id, code, refused.message_ru)
            return "refused", refusal_prompt(refused)
        except BadRequest:
            return "bad-code", "operator-bad-code"
        except Exception:  # the operator must hear that it failed, not silence
            log.exception("operator %s: feature code %s failed", op_id, code)
            return "error", "operator-feature-failed"
        log.info("operator %s: %s by feature code", op_id, code)
        return "ok", confirmation

    async def _record(self, op_id: str, action: str, device: str, body: dict[str, str]) -> None:
        """The code in the audit log before it is done (raises if the log cannot take it)."""
        await self._audit.record(
            Actor(op_id, Role.OPERATOR),
            f"operator.{action}",
            recording_id=None,
            source=device,
            outcome="accepted",
            detail={"operator": op_id, "via": "phone", **body},
        )

    @staticmethod
    async def _finish(session: AgiSession, result: str, state: str, prompt: str) -> None:
        await session.set_variable(RESULT_VARIABLE, result)
        await session.set_variable(STATE_VARIABLE, state)
        await session.stream_file(f"hotline/{prompt}")
