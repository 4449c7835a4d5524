"""`hotline config`: the configuration in force, readable, with every secret hidden."""

from __future__ import annotations

import json

import pytest

from controller.cli import main


def test_config_prints_json_with_secrets_and_url_passwords_hidden(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "ami-password")
    monkeypatch.setenv("HOTLINE_STORE_DATABASE_URL", "postgresql+asyncpg://hot:db%40pass@db:5432/x")
    monkeypatch.setenv("HOTLINE_STORE_REDIS_URL", "redis://:redis-pass@cache:6379/0")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)  # paths and all: it is JSON, not a traceback
    for secret in ("ami-password", "db%40pass", "db@pass", "redis-pass"):
        assert secret not in out
    assert shown["ami"]["secret"] == "***"
    assert shown["store"]["database_url"] == "postgresql+asyncpg://hot:***@db:5432/x"
    assert shown["store"]["redis_url"] == "redis://:***@cache:6379/0"
    assert shown["ivr"]["dialplans_dir"].endswith("dialplans")


def test_config_without_secrets_shows_the_empty_secret_as_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ami"]["secret"] == ""
    assert shown["store"]["redis_url"] == "redis://127.0.0.1:6379/0"
