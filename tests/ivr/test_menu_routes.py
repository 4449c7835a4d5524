"""`ivr.menu.routes.find_routes`: the number and keys that bring a caller to each group's queue,
found by running the real menus; the expectations are read from the shipped menu files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ivr.menu.routes import Route, RouteError, find_routes
from ivr.settings import IvrSettings
from tests.ivr.conftest import DIALPLANS, WORKDAY_EVENING, WORKDAY_NOON


async def open_routes(**options: Any) -> dict[str, Route]:
    """The shipped menus' routes on a Friday noon, surge off: the lines are open."""
    return await find_routes(DIALPLANS, WORKDAY_NOON, surge=False, **options)


def write_menu(directory: Path, number: str, group: str, nodes: str) -> None:
    head = f'number: "{number}"\ntitle: test\ngroup: {group}\nstart: main\nnodes:\n'
    (directory / f"{number}.yaml").write_text(head + nodes, encoding="utf-8")


def key_menu(node_id: str, options: str) -> str:
    """A menu node whose caller who presses nothing ends at the menu's own group."""
    return (
        f"  {node_id}:\n    kind: menu\n    prompts: [hotline/general-main-menu]\n"
        f"    options: {{{options}}}\n    fallback: front\n"
    )


QUEUES = """  alpha: {kind: queue, group: alpha}
  beta: {kind: queue, group: beta}
  front: {kind: queue, group: front}
"""


async def test_the_shipped_menus_route_every_group_a_menu_queues_to() -> None:
    routes = await open_routes()

    assert routes == {
        # 88001000001 main-menu: "0" operator -> general; "2" registration-menu "0";
        # "3" tech-menu "1" (tech-login, tech1); "5" payments info, then payments-after "0"
        "general": Route("88001000001", ("0",), "general"),
        "registration": Route("88001000001", ("2", "0"), "registration"),
        "tech1": Route("88001000001", ("3", "1"), "tech1"),
        "payments": Route("88001000001", ("5", "0"), "payments"),
        # each topic line's main-menu: "0" -> its own group's queue
        "documents": Route("88002000002", ("0",), "documents"),
        "business": Route("88003000003", ("0",), "business"),
        "social": Route("88004000004", ("0",), "social"),
        # the emergency line queues with no menu at all
        "emergency": Route("88005000005", (), "emergency"),
    }
    # application-status needs an application number typed in (88001000001 "4"), tech2 only
    # the ACD's widening: neither is a route of keys


async def test_surge_mode_keeps_the_routes_and_a_closed_hotline_has_only_the_emergency_line() -> (
    None
):
    surge = await find_routes(DIALPLANS, WORKDAY_NOON, surge=True)
    evening = await find_routes(DIALPLANS, WORKDAY_EVENING, surge=False)

    assert surge == await open_routes()
    # 21:30: the day lines offer self-service and callbacks, no queue
    assert evening == {"emergency": Route("88005000005", (), "emergency")}


async def test_depth_bounds_the_keys_and_numbers_narrow_the_search() -> None:
    one_key = await open_routes(depth=1)
    documents_only = await open_routes(numbers=["88002000002"])

    assert set(one_key) == {"general", "documents", "business", "social", "emergency"}
    assert documents_only == {"documents": Route("88002000002", ("0",), "documents")}


async def test_a_changed_menu_changes_its_routes(tmp_path: Path) -> None:
    nodes = key_menu("main", '"1": alpha, "2": more, "9": main') + key_menu("more", '"1": beta')
    write_menu(tmp_path, "88009000009", "front", nodes + QUEUES)
    before = await find_routes(tmp_path, WORKDAY_NOON)

    nodes = key_menu("main", '"1": more, "2": alpha, "9": main') + key_menu("more", '"1": beta')
    write_menu(tmp_path, "88009000009", "front", nodes + QUEUES)
    after = await find_routes(tmp_path, WORKDAY_NOON)

    # the menu's own group is reached only by pressing nothing (its fallback): no route
    assert before == {
        "alpha": Route("88009000009", ("1",), "alpha"),
        "beta": Route("88009000009", ("2", "1"), "beta"),
    }
    assert after == {
        "alpha": Route("88009000009", ("2",), "alpha"),
        "beta": Route("88009000009", ("1", "1"), "beta"),
    }


async def test_the_groups_own_number_wins_over_a_shorter_route_elsewhere(tmp_path: Path) -> None:
    write_menu(tmp_path, "88009000009", "front", key_menu("main", '"1": alpha, "3": beta') + QUEUES)
    beta_line = key_menu("main", '"1": more, "2": alpha') + key_menu("more", '"1": beta')
    write_menu(tmp_path, "88009000008", "beta", beta_line + QUEUES)

    routes = await find_routes(tmp_path, WORKDAY_NOON)

    assert routes["beta"] == Route("88009000008", ("1", "1"), "beta")
    # neither line is alpha's own: the shorter route, then the lower number
    assert routes["alpha"] == Route("88009000008", ("2",), "alpha")


async def test_a_menu_that_loops_gives_no_route_and_the_search_ends(tmp_path: Path) -> None:
    # passes the loop check (the condition could reach the queue) but never does at run time:
    # the engine's step limit ends the call, queued to the menu's group, which is no route
    loop = """  main: {kind: set, values: {x: "1"}, next: check}
  check:
    kind: condition
    branches:
      - {when: {variable: x, equals: "2"}, goto: front}
    otherwise: main
  front: {kind: queue, group: front}
"""
    write_menu(tmp_path, "88009000009", "front", loop)

    routes = await find_routes(tmp_path, WORKDAY_NOON, settings=IvrSettings(max_steps=40))

    assert routes == {}


async def test_a_number_with_no_menu_file_is_refused() -> None:
    with pytest.raises(RouteError, match=r"no menu file .* for 88007777777"):
        await open_routes(numbers=["88002000002", "88007777777"])


async def test_a_rejected_menu_file_is_refused_with_its_problem(tmp_path: Path) -> None:
    write_menu(tmp_path, "88009000009", "front", key_menu("main", '"1": nowhere') + QUEUES)

    with pytest.raises(RouteError, match=r"88009000009\.yaml:\d+: .*nowhere"):
        await find_routes(tmp_path, WORKDAY_NOON)
