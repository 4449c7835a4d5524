"""The project's one Prometheus rules file: valid for Prometheus, and each security alert fires
on a series that should raise it and stays silent on one that should not (promtool's unit tests
in security_rules_test.yml). promtool comes from Debian's `prometheus` package
(`scripts/system-packages --test`); a missing one fails, never skips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules.yml"
UNIT_TESTS = Path(__file__).resolve().parent / "security_rules_test.yml"
SECURITY_ALERTS = {
    "HotlineFailedLoginSpike",
    "HotlineRateLimitHits",
    "HotlineAuditChainBroken",
    "HotlineAuditBrokenEvent",
    "HotlineAuditAnchorStale",
    "HotlineKeyExpiring",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).exists():
        pytest.fail("promtool is missing: run scripts/system-packages --test", pytrace=False)
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules_file() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_each_security_alert_fires_on_one_series_and_not_on_another() -> None:
    result = _promtool("test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_security_alert_has_a_unit_test_and_a_runbook_section() -> None:
    groups = {group["name"]: group for group in yaml.safe_load(RULES.read_text())["groups"]}
    alerts = {rule["alert"]: rule for rule in groups["hotline-security"]["rules"]}
    assert set(alerts) == SECURITY_ALERTS
    tested = {
        case["alertname"]
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested == SECURITY_ALERTS
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    anchors = {rule["annotations"]["runbook"].partition("#")[2] for rule in alerts.values()}
    for anchor in anchors:
        assert f'<a id="{anchor}"></a>' in runbook, anchor


def test_a_broken_expectation_is_reported_by_promtool(tmp_path: Path) -> None:
    """The unit tests really run the rules: a wrong expectation must fail."""
    wrong = UNIT_TESTS.read_text().replace("instance: attacked}", "instance: quiet}", 1)
    (tmp_path / "t.yml").write_text(wrong.replace("../../monitoring/rules.yml", str(RULES)))
    result = _promtool("test", "rules", str(tmp_path / "t.yml"))
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr
