"""The overdue-tickets alert, checked by Prometheus' own rule tester (Debian's promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "rules.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

DESCRIPTION = (
    "1 open ticket(s) of back-office group technical are past their due time; "
    "the work queue (/backoffice) shows them first, highlighted."
)
TEST = """\
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # two controller nodes export the same count from the shared database
      - series: 'hotline_tickets_overdue{{group="technical", instance="node-a"}}'
        values: '0 0 1 1 1 1 1 1 1 1 0 0'
      - series: 'hotline_tickets_overdue{{group="technical", instance="node-b"}}'
        values: '0 0 1 1 1 1 1 1 1 1 0 0'
      - series: 'hotline_tickets_overdue{{group="tier2", instance="node-a"}}'
        values: '0 0 0 0 0 0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 4m  # overdue for 2 minutes: not yet
        alertname: HotlineTicketsOverdue
        exp_alerts: []
      - eval_time: 8m
        alertname: HotlineTicketsOverdue
        exp_alerts:
          - exp_labels: {{severity: warning, group: technical}}
            exp_annotations:
              summary: "Просроченные заявки: группа technical"
              description: "{description}"
      - eval_time: 11m  # resolved: the alert clears
        alertname: HotlineTicketsOverdue
        exp_alerts: []
"""


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool (Debian prometheus) absent")
def test_overdue_tickets_alert_fires_after_five_minutes_once_per_group(tmp_path: Path) -> None:
    test_file = tmp_path / "tickets_test.yml"
    test_file.write_text(TEST.format(rules=RULES, description=DESCRIPTION), encoding="utf-8")
    checked = subprocess.run(
        [PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
