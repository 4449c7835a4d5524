"""`hotline sim --live-day` against a running controller: a traffic file's hours placed as
FastAGI calls on the shipped menus, queued by the ACD, operators on and off duty per the
shifts through the operator API, the figures measured by the simulator.

Time is compressed on both sides by the same factor: the simulator's `--time-scale` and the
controller's ``routing.time_scale``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import yaml
from controllers import started
from people import SUPERVISOR, as_user, token_for

from controller.node import Controller
from controller.settings import Settings, load_settings
from controller.simdrive.day import run_live_day
from reporting.kpis import compute_kpis
from reporting.targets import Targets
from tests.routing.test_live_hour import live_environment, open_dialplans

SCALE: Final = 1 / 240  # one simulated hour lasts 15 s

TRAFFIC: Final = """
interval_minutes: 30
groups:
  general:
    handle_time: {distribution: lognormal, mean: 180, sd: 90}
    wrap_up: 15
    patience: {distribution: exponential, mean: 150}
    arrivals: {start: "10:00", calls: [40, 40]}
    shifts:
      - {start: "10:00", end: "10:30", operators: 4}
      - {start: "10:00", end: "11:00", operators: 3}
  documents:
    handle_time: {distribution: exponential, mean: 240}
    wrap_up: 15
    arrivals: {start: "10:00", calls: [15, 15]}
    shifts:
      - {start: "10:00", end: "11:00", operators: 3}
  tech2:
    handle_time: {distribution: fixed, mean: 300}
    wrap_up: 15
    arrivals: {start: "10:00", calls: [5, 5]}
    shifts: []
"""


def operators_yaml() -> str:
    seats: dict[str, Any] = {}
    for n in range(7):
        seats[f"g{n}"] = {
            "name": f"Общая {n}",
            "device": f"PJSIP/{3000 + n}",
            "skills": {"general": 8 - n},
        }
    for n in range(3):
        seats[f"d{n}"] = {
            "name": f"Документы {n}",
            "device": f"PJSIP/{3100 + n}",
            "skills": {"documents": 8, "general": 1},
        }
    return yaml.safe_dump({"operators": seats}, allow_unicode=True)


def supervisor_token_file(tmp_path: Path) -> Path:
    """The file `hotline sim --live-day --token-file` reads: the SUPERVISOR's bearer token."""
    path = tmp_path / "supervisor.token"
    path.write_text(token_for(SUPERVISOR) + "\n", encoding="utf-8")
    return path


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[tuple[Controller, Settings]]:
    dialplans = open_dialplans(tmp_path)
    (tmp_path / "operators.yaml").write_text(operators_yaml(), encoding="utf-8")
    settings = load_settings(
        None,
        {
            **live_environment(tmp_path, dialplans),
            "HOTLINE_ROUTING_TIME_SCALE": str(SCALE),
        },
    )
    async with started(settings) as node:
        # the live day reaches the controller where its settings say, as `hotline sim` does
        yield node, replace(settings, http=replace(settings.http, port=node.http_port))


async def test_a_live_hour_from_the_traffic_file(
    controller: tuple[Controller, Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node, settings = controller
    assert node.agi is not None
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text(TRAFFIC, encoding="utf-8")
    args = argparse.Namespace(
        traffic=traffic,
        window="10:00-11:00",
        seed=3,
        time_scale=SCALE,
        no_ami=True,
        ami_port=None,
        agi_host="127.0.0.1",
        agi_port=node.agi.port,
        token_file=supervisor_token_file(tmp_path),
    )

    code = await run_live_day(args, settings)

    out = json.loads(capsys.readouterr().out)
    print(json.dumps(out, indent=1, ensure_ascii=False))
    assert code == 0 and out["mode"] == "live" and out["lost"] == 0
    # about 110 calls in the hour, tech2's left out: no menu leads there
    assert 70 < out["calls"] < 150
    assert "no menu leads to group 'tech2': its calls are left out" in out["warnings"]
    # every call reached its queue through the menus, and every queued call has an end
    assert out["never_queued"] == 0  # only callers who hung up in the menu did not queue
    assert out["offered"] + out["left_in_menu"] == out["calls"]
    assert out["answered"] + out["abandoned"] + out["overflowed"] == out["offered"]
    assert out["answered"] > 0.5 * out["offered"]
    assert set(out["groups"]) == {"general", "documents"}
    for group in out["groups"].values():
        assert group["answered"] + group["abandoned"] + group["overflowed"] == group["offered"]
    assert 0 <= out["asa"] and 0 <= out["service_level"] <= 1
    assert 0 < out["occupancy"] <= 1
    assert out["operators_on_duty"] == 10  # 7 of 7 for general, 3 for documents
    # the shifts are over: everybody logged off (after their last call)
    async with aiohttp.ClientSession(headers=as_user(SUPERVISOR)) as http:
        url = f"http://127.0.0.1:{settings.http.port}/api/operators"
        async with http.get(url) as response:
            listing = await response.json()
    assert {row["state"] for row in listing["operators"]} == {"logged_out"}
    # the controller's own books agree with what the simulator saw
    assert node.acd is not None
    stats = node.acd.node.acd.stats
    assert sum(g.answered for g in stats.values()) == out["answered"]
    # and so do the reports' call facts, one per call (reporting.facts, fed through the ports)
    assert node.reporting is not None and node.engine is not None
    await node.reporting.facts.idle()
    today = datetime.now(ZoneInfo("Europe/Moscow")).date()
    period = (today - timedelta(days=1), today + timedelta(days=1))
    total = (await compute_kpis(node.engine, *period, Targets())).total
    assert (total.calls, total.answered) == (out["calls"], out["answered"])
    # abandoned as the ACD counts them; the simulator sees a caller join at hold music, so
    # one who hangs up in the instant between the ACD's queue and the music is "left in the
    # menu" to it (seen: a wait of 0.009 s)
    assert total.abandoned == sum(g.abandoned for g in stats.values())
    assert out["abandoned"] <= total.abandoned <= out["abandoned"] + out["left_in_menu"]


async def test_a_bad_traffic_file_or_window_is_refused_with_the_reason(
    controller: tuple[Controller, Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, settings = controller
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text(TRAFFIC.replace("mean: 240", "mean: -1"), encoding="utf-8")
    args = argparse.Namespace(
        traffic=traffic,
        window=None,
        seed=1,
        time_scale=SCALE,
        no_ami=True,
        ami_port=None,
        agi_host=None,
        agi_port=None,
        token_file=supervisor_token_file(tmp_path),
    )
    assert await run_live_day(args, settings) == 2
    assert f"{traffic}:" in capsys.readouterr().out  # file:line: reason
    traffic.write_text(TRAFFIC, encoding="utf-8")
    args.window = "11:00-10:00"
    assert await run_live_day(args, settings) == 2
    assert "must end after" in capsys.readouterr().out
    args.window, args.time_scale = None, 0
    assert await run_live_day(args, settings) == 2
    assert "--time-scale must be > 0" in capsys.readouterr().out
