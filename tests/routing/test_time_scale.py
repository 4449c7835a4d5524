"""``[routing] time_scale``: every ACD duration multiplied as the files are loaded, for compressed
demos and simulated days, without rewriting the groups file."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import yaml

from controller.settings import load_settings
from hotline.settings import ConfigError
from routing.groups import load_groups
from routing.part import AcdService
from routing.settings import RoutingSettings

SHIPPED = Path(__file__).resolve().parents[2] / "dialplans"
GROUPS = """groups:
  general:
    name: Общая информация
    schedule: always
    wrap_up_seconds: 20
    ring_seconds: 15
    max_wait_seconds: 300
    widen_after_seconds: 60
"""
OPERATORS = """operators:
  anna:
    name: Анна
    device: PJSIP/1001
    skills: {general: 5}
"""


def files(tmp_path: Path, **changes: object) -> RoutingSettings:
    """Settings reading GROUPS and OPERATORS, written into `tmp_path`."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "groups.yaml").write_text(GROUPS, encoding="utf-8")
    (tmp_path / "operators.yaml").write_text(OPERATORS, encoding="utf-8")
    return RoutingSettings(
        groups_file=str(tmp_path / "groups.yaml"),
        operators_file=str(tmp_path / "operators.yaml"),
        schedules_dir=str(tmp_path),  # no always.yaml: the group is always open
        timer_resolution_seconds=0.01,
        **changes,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running(settings: RoutingSettings) -> AsyncIterator[AcdService]:
    service = AcdService.build(settings)
    await service.start(metrics=False)
    try:
        yield service
    finally:
        await service.stop()


async def operator_state(service: AcdService, op_id: str) -> str:
    return (await service.node.store.operator(op_id) or {})["state"]


async def talk_to_anna(service: AcdService, call_id: str, answered_after: float = 0.0) -> None:
    """Anna takes a caller of `general`, answering `answered_after` s after they queued, then
    the call ends: she goes into wrap-up."""
    node = service.node
    await node.enqueue(call_id, "general")
    await asyncio.wait_for(node.wait_for_operator(call_id), 2)
    await node.answer(call_id, at=node.acd.caller(call_id).queued_at + answered_after)
    await node.end_call(call_id)


async def test_a_wrap_up_of_20_s_is_over_in_a_fraction_of_a_second_at_scale_001(
    tmp_path: Path,
) -> None:
    async with running(files(tmp_path, time_scale=0.01)) as service:
        await service.node.login("anna")
        await talk_to_anna(service, "c1")
        assert await operator_state(service, "anna") == "wrap_up"
        # unscaled she would stay in wrap-up for 20 s; the timer loop frees her well before 5
        async with asyncio.timeout(5):
            while await operator_state(service, "anna") != "ready":  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert service.node.acd.groups["general"].wrap_up_seconds == pytest.approx(0.2)


async def test_the_service_level_threshold_is_scaled(tmp_path: Path) -> None:
    # answered 0.5 s after queueing: within 20 s unscaled, past the 0.2 s of scale 0.01
    counted = []
    for scale in (1.0, 0.01):
        async with running(files(tmp_path / str(scale), time_scale=scale)) as service:
            await service.node.login("anna")
            await talk_to_anna(service, "c1", answered_after=0.5)
            stats = service.node.acd.stats["general"]
            counted.append((stats.answered, stats.answered_within_sl))
            assert service.node.acd.settings.service_level_seconds == pytest.approx(20 * scale)
    assert counted == [(1, 1), (1, 0)]


async def test_every_duration_is_scaled_and_ring_and_max_wait_keep_their_one_second_floor(
    tmp_path: Path,
) -> None:
    settings = files(tmp_path, time_scale=0.01)
    service = AcdService.build(settings)

    general = service.node.acd.groups["general"]
    assert (general.wrap_up_seconds, general.widen_after_seconds) == pytest.approx((0.2, 0.6))
    assert (general.ring_seconds, general.max_wait_seconds) == pytest.approx((1.0, 3.0))
    acd = service.node.acd.settings
    assert (acd.recall_window_seconds, acd.service_level_seconds) == pytest.approx((6.0, 0.2))
    assert settings.seconds(settings.announce_every_seconds) == pytest.approx(0.45)
    # the machinery's own timing is not the callers' time
    assert settings.timer_resolution_seconds == 0.01
    assert service.node.heartbeat_seconds == RoutingSettings().heartbeat_seconds


def test_the_shipped_groups_scaled_as_the_setting_does_equal_a_rewritten_file(
    tmp_path: Path,
) -> None:
    # what tests/routing/test_live_hour.py gets by rewriting groups.yaml (x150 compression)
    scale = 1 / 150
    shipped = yaml.safe_load((SHIPPED / "groups.yaml").read_text(encoding="utf-8"))
    for body in shipped["groups"].values():
        for key in ("wrap_up_seconds", "ring_seconds", "max_wait_seconds", "widen_after_seconds"):
            body[key] = body[key] * scale
        for key in ("ring_seconds", "max_wait_seconds"):
            body[key] = max(1.0, body[key])
    rewritten = tmp_path / "groups.yaml"
    rewritten.write_text(yaml.safe_dump(shipped, allow_unicode=True), encoding="utf-8")

    settings = RoutingSettings(time_scale=scale)

    assert settings.timed_groups(load_groups(SHIPPED / "groups.yaml")) == load_groups(rewritten)


def test_scale_one_leaves_the_groups_as_written() -> None:
    groups = load_groups(SHIPPED / "groups.yaml")
    assert RoutingSettings().timed_groups(groups) == groups


def test_a_compressed_clock_is_announced_once_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hotline.routing"):
        AcdService.build(files(tmp_path / "plain"))
        AcdService.build(files(tmp_path / "compressed", time_scale=1 / 150))
    compressed = [r.getMessage() for r in caplog.records if "ACD time" in r.getMessage()]
    assert len(compressed) == 1
    assert compressed[0].startswith("ACD time compressed x150: ")


def test_the_setting_is_read_from_the_environment_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text("[routing]\ntime_scale = 0.02\n", encoding="utf-8")

    assert load_settings(None, {}).routing.time_scale == 1.0
    assert load_settings(None, {"HOTLINE_ROUTING_TIME_SCALE": "0.05"}).routing.time_scale == 0.05
    assert load_settings(config, {}).routing.time_scale == 0.02


@pytest.mark.parametrize("value", ["0", "-1", "fast", "nan", "inf"])
def test_a_time_scale_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="HOTLINE_ROUTING_TIME_SCALE must be a number"):
        load_settings(None, {"HOTLINE_ROUTING_TIME_SCALE": value})


@pytest.mark.parametrize("value", ["0", "-0.5", '"fast"'])
def test_the_file_names_the_key_it_refuses(tmp_path: Path, value: str) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(f"[routing]\ntime_scale = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[routing\] time_scale must be a number"):
        load_settings(config, {})


def test_code_building_the_settings_is_refused_too() -> None:
    with pytest.raises(ValueError, match="time_scale must be a number greater than 0, got 0"):
        RoutingSettings(time_scale=0)
