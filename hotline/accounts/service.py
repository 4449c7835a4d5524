"""Staff accounts: who they are, how they log in (password, then TOTP), their phone PIN.

`Accounts` is what the pages, the CLI, the lookup and the phones' feature codes use. Every
refusal and every throttled attempt is a security event (`hotline.security`); every change to
an account and every completed login is a row of the audit log (`hotline.audit`) when one is
given. Login steps and the texts a person sees:

1. `login_password(id, password, address)`: a new session (never the one the browser brought)
   in the next stage: CHANGE_PASSWORD after a one-time password, ENROL when the account has no
   second factor yet, else TOTP. An unknown id, a disabled account and a wrong password get the
   same answer, in the same time (a dummy hash is checked for unknown ids).
2. `change_password` (one-time passwords are always changed first), `enrolment` and
   `confirm_enrolment` (the TOTP secret and its QR code, one code to confirm, then 10 recovery
   codes shown once), `login_totp` or `login_recovery`: the session becomes FULL under yet
   another token.

A TOTP code is good for its 30-second step and the ones either side (clock drift), once: the
step accepted last is stored and no code of that step or an earlier one is taken again.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import pyotp
from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hotline.accounts.models import RecoveryCodeRow, StaffAccountRow
from hotline.accounts.records import (
    AccountError,
    LoginRefused,
    SessionView,
    StaffAccount,
    Stage,
    check_account_id,
    check_role,
)
from hotline.accounts.secrets import (
    Passwords,
    SecretBox,
    new_one_time_password,
    new_pin,
    new_recovery_code,
    normalise_recovery_code,
    sha256_hex,
)
from hotline.accounts.sessions import SessionStore, account_of_row
from hotline.accounts.throttle import LoginThrottle
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.security import SecurityCategory, security_event

__all__ = ["RECOVERY_CODES", "Accounts", "PasswordRules"]

log = logging.getLogger(__name__)

RECOVERY_CODES: Final = 10
_TOTP_STEP: Final = 30
_WRONG: Final = "Неверное имя пользователя или пароль."
_SECOND_FACTOR_LOST: Final = "Второй фактор недоступен. Обратитесь к администратору."
_WRONG_CODE: Final = "Неверный код. Проверьте время на телефоне и введите новый код."


@dataclass(frozen=True)
class PasswordRules:
    min_length: int = 12
    max_length: int = 1024  # argon2 takes any length; this only bounds the work


class Accounts:
    """Staff accounts over the database (see the module's text)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sessions: SessionStore,
        throttle: LoginThrottle,
        box: SecretBox,
        passwords: Passwords | None = None,
        rules: PasswordRules = PasswordRules(),
        audit: AuditLog | None = None,
        issuer: str = "Горячая линия",
        pin_digits: int = 6,
        clock: Callable[[], float],
    ) -> None:
        self._db = async_sessionmaker(engine, expire_on_commit=False)
        self.sessions = sessions
        self.throttle = throttle
        self._box = box
        self._passwords = passwords or Passwords()
        self.rules = rules
        self._audit = audit
        self.issuer = issuer
        self.pin_digits = pin_digits
        self._clock = clock
        self._dummy_hash: str | None = None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- administration (the `hotline users` commands) ---------------------------------

    async def add(self, account_id: str, role: str, name: str, *, by: Actor) -> str:
        """Create an account; returns its one-time password (changed at the first login)."""
        check_account_id(account_id)
        check_role(role)
        name = name.strip()
        if not name or len(name) > 200:
            raise AccountError("the name must be 1-200 characters")
        password = new_one_time_password()
        now = self._now()
        async with self._db.begin() as db:
            if await db.get(StaffAccountRow, account_id) is not None:
                raise AccountError(f"account {account_id!r} already exists")
            db.add(
                StaffAccountRow(
                    id=account_id,
                    name=name,
                    role=role,
                    disabled=False,
                    password_hash=await self._passwords.hash(password),
                    must_change_password=True,
                    totp_secret=None,
                    totp_enrolled=False,
                    totp_last_step=None,
                    pin_hash=None,
                    last_login_address=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        await self._changed(by, "account.add", account_id, role=role)
        return password

    async def reset(self, account_id: str, *, by: Actor) -> str:
        """A new one-time password, the second factor to enrol again, every session ended."""
        password = new_one_time_password()
        hashed = await self._passwords.hash(password)
        await self._update_account(
            account_id,
            password_hash=hashed,
            must_change_password=True,
            totp_secret=None,
            totp_enrolled=False,
            totp_last_step=None,
            disabled=False,
        )
        await self._drop_recovery_codes(account_id)
        ended = await self.sessions.destroy_all_of(account_id)
        await self._changed(by, "account.reset", account_id, sessions_ended=ended)
        return password

    async def disable(self, account_id: str, *, by: Actor) -> None:
        """No more logins; the account's sessions end at once."""
        await self._update_account(account_id, disabled=True)
        ended = await self.sessions.destroy_all_of(account_id)
        await self._changed(by, "account.disable", account_id, sessions_ended=ended)

    async def list_accounts(self) -> list[StaffAccount]:
        async with self._db() as db:
            rows = (await db.execute(select(StaffAccountRow).order_by(StaffAccountRow.id))).all()
        return [account_of_row(row[0]) for row in rows]

    async def get(self, account_id: str) -> StaffAccount | None:
        async with self._db() as db:
            row = await db.get(StaffAccountRow, account_id)
        return None if row is None else account_of_row(row)

    async def _update_account(self, account_id: str, **values: Any) -> None:
        async with self._db.begin() as db:
            result = await db.execute(
                update(StaffAccountRow)
                .where(StaffAccountRow.id == account_id)
                .values(updated_at=self._now(), **values)
            )
        if not getattr(result, "rowcount", 0):
            raise AccountError(f"no account {account_id[:80]!r}")

    async def _drop_recovery_codes(self, account_id: str) -> None:
        async with self._db.begin() as db:
            await db.execute(
                delete(RecoveryCodeRow).where(RecoveryCodeRow.account_id == account_id)
            )

    async def _changed(self, by: Actor, action: str, account_id: str, **detail: Any) -> None:
        security_event(
            SecurityCategory.ACCOUNT_CHANGED,
            f"{action} {account_id} by {by.user_id}",
            level=logging.INFO,
            account=account_id,
            by=by.user_id,
        )
        await self._record(by, action, account_id, "ok", detail)

    async def _record(
        self, actor: Actor, action: str, account_id: str, outcome: str, detail: dict[str, Any]
    ) -> None:
        if self._audit is not None:
            await self._audit.record(
                actor,
                action,
                recording_id=None,
                source="accounts",
                outcome=outcome,
                detail={"account": account_id, **detail},
            )

    # --- login ---------------------------------------------------------------------------

    async def login_password(self, account_id: str, password: str, address: str) -> str:
        """Step 1: a new session's token, in the stage that comes next (see the module)."""
        account_id = account_id.strip().lower()[:64]
        row = await self._row(account_id)
        self._refuse_if_throttled(account_id, address, row)
        stored = row.password_hash if row is not None else await self._dummy()
        good = len(password) <= self.rules.max_length and await self._passwords.verify(
            stored, password
        )
        if row is None or row.disabled or not good:
            why = "unknown account" if row is None else "disabled" if row.disabled else "password"
            self._failed(account_id, address, f"password refused ({why})")
            raise LoginRefused(_WRONG)
        if self._passwords.needs_rehash(row.password_hash):
            await self._update_account(
                account_id, password_hash=await self._passwords.hash(password)
            )
        stage = (
            Stage.CHANGE_PASSWORD
            if row.must_change_password
            else Stage.TOTP
            if row.totp_enrolled
            else Stage.ENROL
        )
        return await self.sessions.create(account_id, stage, address)

    async def _dummy(self) -> str:
        """A hash to check unknown ids against, so they take as long as known ones."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._passwords.hash(new_one_time_password())
        return self._dummy_hash

    def _refuse_if_throttled(
        self, account_id: str, address: str, row: StaffAccountRow | None
    ) -> None:
        trusted = row is not None and row.last_login_address == address
        wait = self.throttle.wait(account_id, address, trusted_address=trusted)
        if wait > 0:
            security_event(
                SecurityCategory.LOGIN_THROTTLED,
                "login attempt while backing off",
                account=account_id,
                address=address,
                retry_after=round(wait),
            )
            raise LoginRefused(
                f"Слишком много неудачных попыток. Повторите через {max(1, round(wait))} с.",
                retry_after=wait,
            )

    def _failed(self, account_id: str, address: str, reason: str) -> None:
        self.throttle.failed(account_id, address)
        security_event(SecurityCategory.LOGIN_FAILED, reason, account=account_id, address=address)

    async def _row(self, account_id: str) -> StaffAccountRow | None:
        async with self._db() as db:
            return await db.get(StaffAccountRow, account_id)

    async def _at_stage(self, token: str, stage: Stage) -> SessionView:
        view = await self.sessions.get(token)
        if view is None or view.stage is not stage:
            raise LoginRefused("Сеанс входа истёк. Войдите снова.")
        return view

    async def change_password(self, token: str, new: str, again: str) -> str:
        """Replace the one-time password; returns the session's new token (stage ENROL)."""
        view = await self._at_stage(token, Stage.CHANGE_PASSWORD)
        if new != again:
            raise LoginRefused("Пароли не совпадают.")
        if not self.rules.min_length <= len(new) <= self.rules.max_length:
            raise LoginRefused(f"Пароль должен быть не короче {self.rules.min_length} символов.")
        if view.account.id in new.lower():
            raise LoginRefused("Пароль не должен содержать имя пользователя.")
        await self._update_account(
            view.account.id,
            password_hash=await self._passwords.hash(new),
            must_change_password=False,
        )
        return await self.sessions.promote(token, Stage.ENROL)

    async def enrolment(self, token: str) -> tuple[str, str]:
        """The TOTP secret being enrolled and its ``otpauth://`` URI (for the QR code)."""
        view = await self._at_stage(token, Stage.ENROL)
        row = await self._row(view.account.id)
        assert row is not None  # the session's join found it
        if row.totp_secret is None:
            secret = pyotp.random_base32()
            await self._update_account(row.id, totp_secret=self._box.seal(secret, row.id))
        else:
            secret = self._open_secret(row)
        uri = pyotp.TOTP(secret).provisioning_uri(name=row.id, issuer_name=self.issuer)
        return secret, uri

    async def confirm_enrolment(self, token: str, code: str, address: str) -> tuple[str, list[str]]:
        """One good code ends the enrolment: (the FULL session's token, the recovery codes)."""
        view = await self._at_stage(token, Stage.ENROL)
        await self._check_totp(view.account.id, code, address)
        await self._update_account(view.account.id, totp_enrolled=True)
        codes = await self._new_recovery_codes(view.account.id)
        return await self._logged_in(token, view, address, "totp-enrolled"), codes

    async def login_totp(self, token: str, code: str, address: str) -> str:
        view = await self._at_stage(token, Stage.TOTP)
        await self._check_totp(view.account.id, code, address)
        return await self._logged_in(token, view, address, "totp")

    async def login_recovery(self, token: str, code: str, address: str) -> str:
        """A recovery code instead of TOTP: each works once."""
        view = await self._at_stage(token, Stage.TOTP)
        account_id = view.account.id
        self._refuse_if_throttled(account_id, address, None)
        digest = sha256_hex(f"{account_id}\n{normalise_recovery_code(code)}")
        async with self._db.begin() as db:
            result = await db.execute(
                update(RecoveryCodeRow)
                .where(
                    RecoveryCodeRow.account_id == account_id,
                    RecoveryCodeRow.code_sha256 == digest,
                    RecoveryCodeRow.used_at.is_(None),
                )
                .values(used_at=self._now())
            )
        if not getattr(result, "rowcount", 0):
            self._failed(account_id, address, "recovery code refused")
            raise LoginRefused("Неверный или уже использованный резервный код.")
        return await self._logged_in(token, view, address, "recovery-code")

    async def recovery_codes_left(self, account_id: str) -> int:
        async with self._db() as db:
            rows = await db.execute(
                select(RecoveryCodeRow.id).where(
                    RecoveryCodeRow.account_id == account_id, RecoveryCodeRow.used_at.is_(None)
                )
            )
            return len(rows.all())

    async def _check_totp(self, account_id: str, code: str, address: str) -> None:
        self._refuse_if_throttled(account_id, address, None)
        row = await self._row(account_id)
        code = code.strip().replace(" ", "")
        step = None
        if row is not None and row.totp_secret and len(code) == 6 and code.isdigit():
            step = self._matching_step(self._open_secret(row), code)
        if step is None or not await self._claim_step(account_id, step):
            self._failed(account_id, address, "second factor refused")
            raise LoginRefused(_WRONG_CODE)

    def _open_secret(self, row: StaffAccountRow) -> str:
        assert row.totp_secret is not None
        try:
            return self._box.open(row.totp_secret, row.id)
        except (InvalidTag, ValueError):
            log.error(
                "the TOTP secret of %s cannot be opened: the key file is not the one it was "
                "sealed with (restore it, or `hotline users reset %s`)",
                row.id,
                row.id,
            )
            raise LoginRefused(_SECOND_FACTOR_LOST) from None

    def _matching_step(self, secret: str, code: str) -> int | None:
        totp = pyotp.TOTP(secret)
        now_step = int(self._clock() // _TOTP_STEP)
        for step in (now_step - 1, now_step, now_step + 1):
            if hmac.compare_digest(totp.at(step * _TOTP_STEP), code):
                return step
        return None

    async def _claim_step(self, account_id: str, step: int) -> bool:
        """Take `step` as used, unless it or a later one already was (replay)."""
        async with self._db.begin() as db:
            result = await db.execute(
                update(StaffAccountRow)
                .where(
                    StaffAccountRow.id == account_id,
                    (StaffAccountRow.totp_last_step.is_(None))
                    | (StaffAccountRow.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
        return bool(getattr(result, "rowcount", 0))

    async def _new_recovery_codes(self, account_id: str) -> list[str]:
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        await self._drop_recovery_codes(account_id)
        async with self._db.begin() as db:
            for code in codes:
                digest = sha256_hex(f"{account_id}\n{normalise_recovery_code(code)}")
                db.add(RecoveryCodeRow(account_id=account_id, code_sha256=digest, used_at=None))
        return codes

    async def _logged_in(self, token: str, view: SessionView, address: str, how: str) -> str:
        self.throttle.succeeded(view.account.id, address)
        await self._update_account(view.account.id, last_login_address=address[:200])
        actor = Actor(view.account.id, view.account.role)
        await self._record(actor, "login", view.account.id, "ok", {"second_factor": how})
        return await self.sessions.promote(token, Stage.FULL)

    async def logout(self, token: str) -> None:
        view = await self.sessions.get(token)
        await self.sessions.destroy(token)
        if view is not None and view.stage is Stage.FULL:
            actor = Actor(view.account.id, view.account.role)
            await self._record(actor, "logout", view.account.id, "ok", {})

    # --- the phone PIN -------------------------------------------------------------------

    async def new_pin(self, account_id: str, *, by: Actor) -> str:
        """A fresh PIN for the phone's log-in code, shown once; the old one stops working."""
        pin = new_pin(self.pin_digits)
        await self._update_account(account_id, pin_hash=await self._passwords.hash(pin))
        await self._changed(by, "account.pin", account_id)
        return pin

    async def check_pin(self, account_id: str, pin: str, where: str) -> bool:
        """Is `pin` the account's PIN? Throttled like a login (`where`: the phone's device)."""
        row = await self._row(account_id)
        try:
            self._refuse_if_throttled(account_id, where, row)
        except LoginRefused:
            return False
        good = (
            row is not None
            and not row.disabled
            and row.pin_hash is not None
            and pin.isascii()
            and pin.isdigit()
            and len(pin) <= 32
            and await self._passwords.verify(row.pin_hash, pin)
        )
        if not good:
            self._failed(account_id, where, "phone PIN refused")
        return good
