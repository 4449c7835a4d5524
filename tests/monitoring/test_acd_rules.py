"""The ACD's and the recorder's alert rules of monitoring/rules.yml, unit-tested with
``promtool test rules`` (Debian's prometheus package, /usr/bin/promtool): each alert fires on
the series the product exports and stays quiet otherwise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "rules.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

UNIT_TESTS = """\
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # two controller nodes; the emergency group empties at minute 2 on both
      - series: 'hotline_group_open_unstaffed{{group="emergency",instance="a"}}'
        values: '0 0 1 1 1 1'
      - series: 'hotline_group_open_unstaffed{{group="emergency",instance="b"}}'
        values: '0 0 1 1 1 1'
      # general: one node still sees an operator logged in (they disagree): no alert
      - series: 'hotline_group_open_unstaffed{{group="general",instance="a"}}'
        values: '1x30'
      - series: 'hotline_group_open_unstaffed{{group="general",instance="b"}}'
        values: '0x30'
      # tech1: open and empty for good
      - series: 'hotline_group_open_unstaffed{{group="tech1",instance="a"}}'
        values: '1x30'
    alert_rule_test:
      - eval_time: 2m
        alertname: HotlineEmergencyLineUnstaffed
        exp_alerts: []
      - eval_time: 4m
        alertname: HotlineEmergencyLineUnstaffed
        exp_alerts:
          - exp_labels: {{severity: critical, group: emergency}}
            exp_annotations:
              summary: "Экстренная линия: никто из дежурных не вошёл в систему"
              description: >-
                Group emergency is open and nobody of it is logged in: callers go to the
                groups it widens to, else hear "all busy". Get the duty shift logged in.
      - eval_time: 10m
        alertname: HotlineGroupOpenUnstaffed
        exp_alerts: []
      - eval_time: 20m
        alertname: HotlineGroupOpenUnstaffed
        exp_alerts:
          - exp_labels: {{severity: warning, group: tech1}}
            exp_annotations:
              summary: "Группа tech1 открыта, но операторов в системе нет"
              description: >-
                Group tech1 has been open with nobody logged in for 15 minutes:
                its callers go to its overflow group or hear "all busy".
  - interval: 1m
    input_series:
      # two nodes export the same count; a message goes overdue at minute 3, is called back
      # at minute 6
      - series: 'hotline_voice_messages_overdue{{group="emergency",instance="a"}}'
        values: '0 0 0 1 1 1 0 0'
      - series: 'hotline_voice_messages_overdue{{group="emergency",instance="b"}}'
        values: '0 0 0 1 1 1 0 0'
    alert_rule_test:
      - eval_time: 2m
        alertname: HotlineVoiceMessageOverdue
        exp_alerts: []
      - eval_time: 4m
        alertname: HotlineVoiceMessageOverdue
        exp_alerts:
          - exp_labels: {{severity: critical, group: emergency}}
            exp_annotations:
              summary: "Голосовое сообщение в группе emergency ждёт обратного звонка дольше срока"
              description: >-
                1 voice message(s) of group emergency have waited past the
                group's message_deadline_minutes for their call back: see /api/callbacks.
      - eval_time: 7m
        alertname: HotlineVoiceMessageOverdue
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'hotline_recorder_starts_total{{outcome="started"}}'
        values: '0+5x30'
      - series: 'hotline_recorder_starts_total{{outcome="failed"}}'
        values: '0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 4m
        alertname: HotlineRecordingNotStarted
        exp_alerts: []
      - eval_time: 6m
        alertname: HotlineRecordingNotStarted
        exp_alerts:
          - exp_labels: {{severity: warning, outcome: failed}}
            exp_annotations:
              summary: "Звонки идут без записи (failed)"
              description: >-
                MixMonitor did not start on answered calls in the last 10 minutes
                (outcome failed); see the controller's log lines "call not recorded".
      - eval_time: 25m
        alertname: HotlineRecordingNotStarted
        exp_alerts: []
"""


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool is missing: scripts/test installs Debian's prometheus package")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def test_the_rules_file_is_valid() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_acd_and_recorder_alerts_fire_when_they_should(tmp_path: Path) -> None:
    tests = tmp_path / "acd_rules_test.yml"
    tests.write_text(UNIT_TESTS.format(rules=RULES), encoding="utf-8")
    ran = promtool("test", "rules", str(tests))
    assert ran.returncode == 0, ran.stdout + ran.stderr
