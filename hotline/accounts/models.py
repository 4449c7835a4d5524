"""The accounts' tables (schema owned by migration 0007_accounts; a test compares the two)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hotline.store.db import Base, UTCDateTime

__all__ = ["RecoveryCodeRow", "ServiceKeyRow", "StaffAccountRow", "StaffSessionRow"]


class StaffAccountRow(Base):
    """One person: the id operators.yaml and the audit log use, a role, secrets as hashes."""

    __tablename__ = "staff_accounts"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    disabled: Mapped[bool] = mapped_column(Boolean)
    password_hash: Mapped[str] = mapped_column(String)
    must_change_password: Mapped[bool] = mapped_column(Boolean)
    # encrypted (hotline.accounts.secrets.SecretBox); set but not enrolled while enrolling
    totp_secret: Mapped[str | None] = mapped_column(String, nullable=True)
    totp_enrolled: Mapped[bool] = mapped_column(Boolean)
    # the last TOTP time step accepted: the same code (or an older one) is never taken twice
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pin_hash: Mapped[str | None] = mapped_column(String, nullable=True)
    # the address of the last successful login: spared by the account-wide back-off
    last_login_address: Mapped[str | None] = mapped_column(String, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecoveryCodeRow(Base):
    __tablename__ = "staff_recovery_codes"
    __table_args__ = (Index("ix_staff_recovery_codes_account", "account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String, ForeignKey("staff_accounts.id", ondelete="CASCADE")
    )
    code_sha256: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StaffSessionRow(Base):
    """A server-side session; the cookie holds the token, the row only its SHA-256."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_account", "account_id"),)

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String, ForeignKey("staff_accounts.id", ondelete="CASCADE")
    )
    stage: Mapped[str] = mapped_column(String)  # hotline.accounts.service.Stage
    csrf_token: Mapped[str] = mapped_column(String)
    address: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServiceKeyRow(Base):
    """A system's key: scoped, expiring, revocable; only its SHA-256 is kept."""

    __tablename__ = "service_keys"
    __table_args__ = (
        UniqueConstraint("key_sha256", name="uq_service_keys_key_sha256"),
        Index("ix_service_keys_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String)
    key_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String)  # space-separated
    created_by: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
