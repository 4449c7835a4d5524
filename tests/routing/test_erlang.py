"""Erlang C figures, staffing, the traffic file's validator and the `hotline acd staffing` command.

Expected values are computed here independently, from the textbook M/M/N formula in exact
rational arithmetic (or in log space for large N), never by calling routing.erlang.
"""

from __future__ import annotations

import argparse
import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
from yamlfiles import assert_refused_at_line

from hotline.yamldoc import YamlFileError
from routing.erlang import (
    StaffingTarget,
    erlang_b,
    erlang_c,
    offered_load,
    predict,
    required_agents,
)
from routing.staffing_cli import add_commands
from routing.traffic import load_traffic

EXAMPLE = Path(__file__).resolve().parents[2] / "dialplans" / "traffic.yaml"


def textbook_wait_probability(agents: int, load: Fraction) -> Fraction:
    """P(wait) = (A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A)), exactly."""
    tail = load**agents / math.factorial(agents) * Fraction(agents) / (agents - load)
    head = sum(load**k / math.factorial(k) for k in range(agents))
    return tail / (head + tail)


def log_space_wait_probability(agents: int, load: float) -> float:
    """The same formula with every term as a logarithm, for N far beyond float factorials."""
    log_terms = [k * math.log(load) - math.lgamma(k + 1) for k in range(agents)]
    log_tail = (
        agents * math.log(load) - math.lgamma(agents + 1) + math.log(agents / (agents - load))
    )
    top = max([*log_terms, log_tail])
    head = sum(math.exp(t - top) for t in log_terms)
    tail = math.exp(log_tail - top)
    return tail / (head + tail)


# -- Erlang C --------------------------------------------------------------------------------


def test_offered_load_of_100_calls_in_30_minutes_at_3_minutes_each_is_10_erlangs() -> None:
    assert offered_load(100, 1800, 180) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("agents", "published"),
    # P(wait) for A = 10 Erlangs as printed in Erlang C tables (3 decimals)
    [(11, 0.682), (12, 0.449), (13, 0.285), (14, 0.174), (15, 0.102)],
)
def test_wait_probability_matches_the_textbook(agents: int, published: float) -> None:
    exact = float(textbook_wait_probability(agents, Fraction(10)))
    assert erlang_c(agents, 10.0) == pytest.approx(exact, rel=1e-12)
    assert round(erlang_c(agents, 10.0), 3) == published


@pytest.mark.parametrize("agents", [13, 14, 20])
def test_service_level_asa_and_occupancy_follow_the_exact_formulas(agents: int) -> None:
    load, aht, target = 10.0, 180.0, 20.0
    p_wait = float(textbook_wait_probability(agents, Fraction(10)))
    figures = predict(agents, load, aht, target)
    assert figures.p_wait == pytest.approx(p_wait, rel=1e-12)
    assert figures.service_level == pytest.approx(
        1 - p_wait * math.exp(-(agents - load) * target / aht), rel=1e-12
    )
    assert figures.asa == pytest.approx(p_wait * aht / (agents - load), rel=1e-12)
    assert figures.occupancy == pytest.approx(load / agents)


def test_erlang_b_matches_its_closed_form() -> None:
    load, agents = Fraction(7, 2), 6
    terms = [load**k / math.factorial(k) for k in range(agents + 1)]
    assert erlang_b(agents, 3.5) == pytest.approx(float(terms[-1] / sum(terms)), rel=1e-12)


@pytest.mark.parametrize(("agents", "load"), [(200, 190.0), (600, 580.5), (1500, 1470.0)])
def test_hundreds_of_agents_stay_accurate(agents: int, load: float) -> None:
    # A^N / N! overflows a float from N = 171; the Erlang B recursion must not.
    assert erlang_c(agents, load) == pytest.approx(
        log_space_wait_probability(agents, load), rel=1e-9
    )


def test_a_queue_with_no_spare_capacity_makes_everyone_wait() -> None:
    figures = predict(10, 10.0, 180, 20)
    assert not figures.stable
    assert (figures.p_wait, figures.service_level, figures.asa) == (1.0, 0.0, math.inf)
    assert erlang_c(5, 12.0) == 1.0


def test_the_smallest_staff_meeting_80_percent_in_20_seconds() -> None:
    staffing = required_agents(10.0, 180, StaffingTarget(0.8, 20))
    # 13 operators give 79.6 % (just short), 14 give 88.8 %
    assert staffing.agents == 14
    assert staffing.figures.service_level == pytest.approx(0.888, abs=5e-4)
    assert predict(13, 10.0, 180, 20).service_level < 0.8


def test_asa_and_occupancy_targets_can_each_decide_the_staff() -> None:
    asa_only = StaffingTarget(service_level=None, asa=10.0)
    assert required_agents(10.0, 180, asa_only).agents == 14  # 13 operators: ASA 17.1 s
    capped = StaffingTarget(0.8, 20, max_occupancy=0.7)
    assert required_agents(10.0, 180, capped).agents == 15  # 10/14 = 71 % is above the cap


def test_shrinkage_adds_people_to_the_roster_not_to_the_phones() -> None:
    staffing = required_agents(10.0, 180, StaffingTarget(), shrinkage=0.3)
    assert (staffing.agents, staffing.scheduled) == (14, 20)  # 14 / 0.7 = 20 exactly


def test_large_centre_staffing_is_computed() -> None:
    load = offered_load(4800, 1800, 180)  # 480 Erlangs
    staffing = required_agents(load, 180, StaffingTarget(0.8, 20))
    below = predict(staffing.agents - 1, load, 180, 20)
    assert staffing.figures.service_level >= 0.8 > below.service_level
    assert 480 < staffing.agents < 500


def test_no_calls_need_no_operators() -> None:
    assert required_agents(0.0, 180, StaffingTarget()).agents == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: StaffingTarget(service_level=1.5),
        lambda: StaffingTarget(asa=0),
        lambda: required_agents(10.0, 180, StaffingTarget(), shrinkage=1.0),
        lambda: predict(0, 1.0, 180, 20),
        lambda: offered_load(10, 1800, 0),
    ],
)
def test_nonsense_parameters_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


# -- the traffic file -------------------------------------------------------------------------


def test_the_example_traffic_file_is_valid() -> None:
    plan = load_traffic(EXAMPLE)
    assert plan.interval_seconds == 1800 and plan.intervals == 48
    general = next(g for g in plan.groups if g.name == "general")
    assert general.calls[16] == 40  # 08:00 is the 17th half hour
    assert general.aht == 225  # talk 210 + wrap-up 15
    assert general.operators_at(11 * 3600) == 22


GOOD = """\
interval_minutes: 30
groups:
  general:
    handle_time: {distribution: exponential, mean: 180}
    arrivals:
      start: "08:00"
      calls: [100, 120]
    shifts:
      - {start: "08:00", end: "09:00", operators: 14}
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("interval_minutes: 30", "interval_minutes: 7", 1, "must divide a day"),
        ("  general:\n", "  general:\n    patiance: 3\n", 4, "unknown field 'patiance'"),
        ('start: "08:00"\n      calls', 'start: "25:00"\n      calls', 6, "between 00:00"),
        ('start: "08:00"\n      calls', 'start: "08:10"\n      calls', 6, "begin an interval"),
        ('start: "08:00"\n      calls', 'start: "23:30"\n      calls', 7, "past the end"),
        ("[100, 120]", "[100, -5]", 7, "at least 0"),
        ("[100, 120]", "[100, .inf]", 7, "finite"),
        ("[100, 120]", "[100, many]", 7, "must be a number"),
        ("exponential, mean: 180", "lognormal, mean: 180", 4, "needs sd"),
        ("exponential, mean: 180", "gamma, mean: 180", 4, "must be one of"),
        ("mean: 180", "mean: 0", 4, "greater than 0"),
        ('end: "09:00"', 'end: "07:00"', 9, "after its start"),
        ("operators: 14", "operators: 2.5", 9, "whole number"),
        ("interval_minutes: 30", "interval_minutes: 30\ninterval_minutes: 15", 2, "duplicate"),
        ("calls: [100, 120]", "calls: [100, 120", 8, "not valid YAML"),
        ("  general:", "  Общая справка:", 3, "group id"),
    ],
)
def test_mistakes_in_the_traffic_file_point_at_their_line(
    old: str, new: str, line: int, message: str, tmp_path: Path
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    assert_refused_at_line(load_traffic, tmp_path / "traffic.yaml", text, line, message)


def test_a_missing_or_binary_traffic_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match="cannot read"):
        load_traffic(tmp_path / "absent.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(YamlFileError, match="cannot read"):
        load_traffic(binary)


# -- hotline acd staffing -------------------------------------------------------------------------


async def staffing(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["acd", "staffing", *argv])
    result: int = await args.run(args, None)
    return result


async def test_staffing_prints_each_interval_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traffic.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert await staffing("--traffic", str(path), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["start"], r["calls"], r["required_agents"]) for r in rows] == [
        ("08:00", 100, 14),  # 10 Erlangs, 80 % in 20 s
        ("08:30", 120, 16),  # 12 Erlangs
    ]
    first = rows[0]
    assert first["rostered_agents"] == 14 and first["aht"] == 180
    assert first["service_level"] == pytest.approx(0.888, abs=5e-4)
    assert first["asa"] == pytest.approx(7.84, abs=0.01)
    assert first["occupancy"] == pytest.approx(10 / 14, abs=1e-4)


async def test_staffing_targets_from_the_command_line_win(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traffic.yaml"
    path.write_text(GOOD, encoding="utf-8")
    argv = ["--traffic", str(path), "--json", "--target-sl", "0.9", "--target-seconds", "10"]
    assert await staffing(*argv, "--shrinkage", "0.5") == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["service_level"] >= 0.9
    assert predict(first["required_agents"] - 1, 10.0, 180, 10).service_level < 0.9
    assert first["scheduled_agents"] == 2 * first["required_agents"]


async def test_staffing_table_of_the_example_day(capsys: pytest.CaptureFixture[str]) -> None:
    assert await staffing("--traffic", str(EXAMPLE), "--group", "payments") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "операторов" in lines[0] and set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + 18  # payments has calls in 18 half hours
    assert lines[2].split()[:3] == ["payments", "09:00", "15"]


async def test_staffing_reports_a_broken_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traffic.yaml"
    path.write_text(GOOD.replace("mean: 180", "mean: -1"), encoding="utf-8")
    assert await staffing("--traffic", str(path)) == 2
    assert f"{path}:4:" in capsys.readouterr().err
    assert await staffing("--traffic", str(path.with_name("nope.yaml"))) == 2
    assert await staffing("--traffic", str(EXAMPLE), "--group", "nobody") == 2
    assert "unknown group 'nobody'" in capsys.readouterr().err


def test_staffing_options_refuse_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    cases = [
        (["--target-sl", "80"], "between 0 and 1"),
        (["--shrinkage", "1"], "below 1"),
        (["--target-seconds", "nan"], "not a finite number"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit):
            parser.parse_args(["acd", "staffing", *argv])
        assert message in capsys.readouterr().err
