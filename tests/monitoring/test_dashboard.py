"""The Grafana dashboard as someone importing it meets it: it picks its Prometheus from a
variable (no data source uid of ours baked in), every panel is placed and unique, and each
KPI panel draws the same target the alert of that KPI fires on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "hotline.json"
RULES = ROOT / "monitoring" / "rules.yml"


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def rule_threshold(alert: str) -> float:
    """The number a rule compares its KPI with: `(...) < 0.8` or `(...) > 20`."""
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                return float(re.search(r"\)\s*[<>]\s*([\d.]+)", rule["expr"]).group(1))  # type: ignore[union-attr]
    raise AssertionError(f"no alert {alert}")


def thresholds(title_start: str) -> list[set[float]]:
    """The threshold values of every panel whose title starts with `title_start`."""
    found = [
        {step["value"] for step in p["fieldConfig"]["defaults"]["thresholds"]["steps"]}
        for p in dashboard()["panels"]
        if p["title"].startswith(title_start)
    ]
    assert found, f"no panel titled {title_start}..."
    return found


def test_the_dashboard_takes_its_prometheus_from_a_variable() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["group"]["includeAll"] and variables["group"]["allValue"] == ".*"
    data_panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(data_panels) >= 20
    sources = {json.dumps(p["datasource"]) for p in data_panels}
    sources |= {json.dumps(t["datasource"]) for p in data_panels for t in p["targets"]}
    assert sources == {json.dumps({"type": "prometheus", "uid": "${datasource}"})}


def test_panels_are_unique_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_each_kpi_panel_draws_the_target_its_alert_fires_on() -> None:
    asa = rule_threshold("HotlineAsaAboveTarget")
    service_level = rule_threshold("HotlineServiceLevelBelowTarget")
    abandons = rule_threshold("HotlineAbandonSpike")
    assert (asa, service_level, abandons) == (20, 0.8, 0.1)  # the seed's ASA; 80/20; 10 %
    assert all(asa in values for values in thresholds("ASA"))
    assert all(service_level in values for values in thresholds("Service level"))
    assert all(abandons in values for values in thresholds("Abandon rate"))
    assert all(0.85 in values for values in thresholds("Occupancy"))
    assert len(thresholds("ASA") + thresholds("Service level") + thresholds("Abandon")) == 6
