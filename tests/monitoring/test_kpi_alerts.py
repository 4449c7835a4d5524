"""The KPI, floor, recorder and call-facts alerts of monitoring/rules.yml as an on-call
engineer meets them: the file loads in Prometheus (`promtool check rules`), each alert fires
for the group or node in trouble and stays silent for the healthy one (`promtool test rules`
with kpi_alerts_test.yml), and each says how long, how bad and what, in Russian and English.
Skipped only where Debian's `prometheus` package is not installed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules.yml"
UNIT_TESTS = Path(__file__).with_name("kpi_alerts_test.yml")
PROMTOOL = Path("/usr/bin/promtool")

pytestmark = pytest.mark.skipif(
    not PROMTOOL.exists(), reason="promtool absent (scripts/system-packages --test installs it)"
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def alerts_by_name() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every alert of the rules file: its group and its rule."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {
        rule["alert"]: (group["name"], rule)
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def unit_tested_alerts() -> set[str]:
    document = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))
    return {case["alertname"] for test in document["tests"] for case in test["alert_rule_test"]}


def test_the_rules_file_loads_in_prometheus() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_each_alert_fires_for_the_series_in_trouble_only() -> None:
    tested = promtool("test", "rules", UNIT_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_issues_alerts_are_in_their_groups_and_unit_tested() -> None:
    alerts = alerts_by_name()
    wanted = {
        "HotlineServiceLevelBelowTarget": "hotline-acd",
        "HotlineAsaAboveTarget": "hotline-acd",
        "HotlineAbandonSpike": "hotline-acd",
        # the open group with nobody logged in: HotlineGroupOpenUnstaffed and
        # HotlineEmergencyLineUnstaffed, unit-tested in acd_rules (tests/monitoring)
        "HotlineAmiLinkDown": "hotline-acd",
        "HotlineCallbackBacklogGrowing": "hotline-acd",
        "HotlineRecorderStorageAlarm": "hotline-recorder",
        "HotlineRecorderSpoolAlarm": "hotline-recorder",
        "HotlineRecorderBacklogGrowing": "hotline-recorder",
        "HotlineCallFactsDatabaseAway": "hotline-reporting",
        "HotlineCallFactsLost": "hotline-reporting",
        "HotlineCallFactsJournalFilling": "hotline-reporting",
        "HotlineCallFactsJournalNotFlushed": "hotline-reporting",
    }
    assert {name: alerts[name][0] for name in wanted if name in alerts} == wanted
    assert set(wanted) <= unit_tested_alerts()


@pytest.mark.parametrize("name", sorted(unit_tested_alerts()))
def test_each_alert_waits_has_a_severity_and_speaks_both_languages(name: str) -> None:
    _, rule = alerts_by_name()[name]
    assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no `for:` duration"
    assert rule["labels"]["severity"] in {"warning", "critical"}
    russian, english = rule["annotations"]["summary"].split(" / ")
    assert re.search("[а-яё]{4}", russian), f"{name}: the summary's first half is not Russian"
    assert re.search("[a-z]{4}", english) and not re.search("[а-яё]", english)
