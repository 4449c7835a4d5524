"""/quality: the sample of a period, the scoring form, saved and audited scores and the
per-operator averages, for quality auditors and supervisors only; the criteria file's
mistakes at file:line."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from databases import migrated_engine

from hotline.access import access_middleware, routes_without_policy
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.yamldoc import YamlFileError
from quality.criteria import load_criteria
from quality.http import QualityPages, add_quality_routes
from quality.scores import ScoreStore

SHIPPED = Path(__file__).parents[2] / "dialplans" / "quality.yaml"
PEOPLE = {
    "kozlova": Actor("kozlova", "quality_auditor"),
    "smirnova": Actor("smirnova", "supervisor"),
    "ivanova": Actor("ivanova", "operator"),
    "browser": Actor("petrova", "quality_auditor", csrf_token="s3cret"),
}
# Every criterion marked; the shipped weights are 1, 1, 3, 2, 3 (sum 10).
FULL = {"greeting": 5, "identification": 5, "correctness": 10, "politeness": 5, "resolution": 10}


async def lookup(request: web.Request) -> Actor | None:
    return PEOPLE.get(request.headers.get("Authorization", "").removeprefix("Bearer "))


@dataclass
class FakeRecorder:
    """The recorder's port: recordings c1..c3 answered by op1, c4 by op2."""

    operators: dict[str, str] = field(
        default_factory=lambda: {"c1": "op1", "c2": "op1", "c3": "op1", "c4": "op2"}
    )
    asked: list[tuple[str, str, int]] = field(default_factory=list)

    async def sample(
        self, actor: Actor, period: str, per_operator: int, source: str
    ) -> dict[str, list[str]]:
        if period != "2026-11":
            raise ValueError("bad period")
        self.asked.append((actor.user_id, period, per_operator))
        return {"op1": ["c1", "c3"], "op2": ["c4"]}

    async def operator_of(self, recording_id: str) -> str | None:
        return self.operators.get(recording_id)


@dataclass
class Quality:
    client: TestClient[web.Request, web.Application]
    audit: AuditLog
    scores: ScoreStore
    recorder: FakeRecorder
    criteria_file: Path

    async def get(self, who: str, path: str) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {who}"}
        async with self.client.get(path, headers=headers, allow_redirects=False) as response:
            return response.status, await response.text()

    async def score(
        self, who: str, recording: str, marks: dict[str, int], **extra: str
    ) -> tuple[int, str]:
        form = {f"points_{key}": str(value) for key, value in marks.items()}
        form |= {"period": "2026-11", "comment": "", **extra}
        headers = {"Authorization": f"Bearer {who}"}
        path = f"/quality/recordings/{recording}"
        async with self.client.post(
            path, data=form, headers=headers, allow_redirects=False
        ) as response:
            return response.status, response.headers.get("Location", "") or await response.text()

    async def scored(self) -> list[dict[str, object]]:
        entries = await self.audit.entries()
        return [json.loads(e.detail) for e in entries if e.action == "quality.scored"]


@pytest.fixture
async def quality(tmp_path: Path) -> AsyncIterator[Quality]:
    criteria_file = tmp_path / "quality.yaml"
    criteria_file.write_text(SHIPPED.read_text())
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'q.sqlite3'}") as engine:
        audit = AuditLog(engine)
        scores = ScoreStore(engine)
        recorder = FakeRecorder()
        app = web.Application(middlewares=[access_middleware(lookup)])
        pages = QualityPages(
            recorder, scores, lambda: load_criteria(criteria_file), audit, lambda: "2026-11"
        )
        add_quality_routes(app, pages)
        assert routes_without_policy(app) == []
        async with TestClient(TestServer(app)) as client:
            yield Quality(client, audit, scores, recorder, criteria_file)


async def test_an_auditor_sees_the_sample_with_links_to_the_scoring_form(
    quality: Quality,
) -> None:
    status, html = await quality.get("kozlova", "/quality?period=2026-11&per_operator=2")
    assert status == 200
    assert quality.recorder.asked == [("kozlova", "2026-11", 2)]
    assert '<a href="/quality/recordings/c1?period=2026-11">c1</a>' in html
    assert '<a href="/quality/recordings/c4?period=2026-11">c4</a>' in html
    status, form = await quality.get("smirnova", "/quality/recordings/c1?period=2026-11")
    assert status == 200
    assert '<audio id="player" controls preload="none" src="/recordings/c1/audio">' in form
    assert 'action="/recordings/c1/clip"' in form  # the recorder's audited clip
    assert 'name="points_correctness" type="number" min="0" max="10"' in form
    assert "Правильность ответа" in form


async def test_an_operator_may_neither_sample_nor_score(quality: Quality) -> None:
    assert (await quality.get("ivanova", "/quality"))[0] == 403
    assert (await quality.get("ivanova", "/quality/recordings/c1"))[0] == 403
    assert (await quality.score("ivanova", "c1", FULL))[0] == 403
    assert quality.recorder.asked == []
    assert await quality.scored() == [] and await quality.scores.averages("2026-11") == []


async def test_a_score_is_saved_with_its_weighted_total_and_audited(quality: Quality) -> None:
    marks = {**FULL, "identification": 4, "correctness": 7, "resolution": 5}
    status, location = await quality.score("kozlova", "c1", marks, comment="Не уточнил адрес")
    assert (status, location) == (303, "/quality/recordings/c1?period=2026-11&saved=1")
    # by hand: (1*5/5 + 1*4/5 + 3*7/10 + 2*5/5 + 3*5/10) / 10 = (1 + 0.8 + 2.1 + 2 + 1.5) / 10
    [saved] = await quality.scores.of_recording("c1")
    assert (saved.operator_id, saved.auditor_id) == ("op1", "kozlova")
    assert saved.total_percent == pytest.approx(74.0)
    assert (saved.points, saved.comment) == (marks, "Не уточнил адрес")
    [detail] = await quality.scored()
    assert detail == {"operator": "op1", "period": "2026-11", "points": marks, "total": 74.0}
    _, form = await quality.get("kozlova", location)
    assert "Оценка сохранена." in form and "74,0 %" in form


async def test_the_sample_page_shows_each_operators_average(quality: Quality) -> None:
    await quality.score("kozlova", "c1", {**FULL, "identification": 4, "correctness": 7})
    await quality.score("smirnova", "c3", FULL)
    await quality.score("kozlova", "c4", dict.fromkeys(FULL, 0))
    await quality.score("kozlova", "c2", dict.fromkeys(FULL, 0), period="2026-10")
    # op1: c1 = (1 + 0.8 + 2.1 + 2 + 3) / 10 = 89 %, c3 = 100 %: mean 94.5 %; op2: 0 %;
    # the October score of c2 is not November's
    _, html = await quality.get("kozlova", "/quality?period=2026-11")
    rows = re.findall(
        r'<tr data-operator="(\w+)"><td>\w+</td><td>(\d+)</td>\s*<td class="average">([^<]+)</td>',
        html,
    )
    assert rows == [("op1", "2", "94,5 %"), ("op2", "1", "0,0 %")]


async def test_an_auditors_new_score_of_a_call_replaces_theirs_in_the_average(
    quality: Quality,
) -> None:
    await quality.score("kozlova", "c1", dict.fromkeys(FULL, 0))  # a slip: 0 %
    await quality.score("kozlova", "c1", FULL)  # corrected: 100 %
    await quality.score("smirnova", "c1", {**FULL, "correctness": 5})  # another view: 85 %
    # op1: kozlova's latest (100 %) and smirnova's (by hand: (1 + 1 + 1.5 + 2 + 3) / 10 = 85 %)
    _, html = await quality.get("kozlova", "/quality?period=2026-11")
    assert re.search(
        r'data-operator="op1"><td>\w+</td><td>2</td>\s*<td class="average">92,5 %', html
    )
    history = await quality.scores.of_recording("c1")
    assert [(s.auditor_id, s.total_percent) for s in history] == [
        ("kozlova", 0.0),
        ("kozlova", 100.0),
        ("smirnova", 85.0),
    ]


@pytest.mark.parametrize(
    ("marks", "says"),
    [
        ({**FULL, "correctness": 11}, "Правильность ответа: от 0 до 10 баллов"),
        ({k: v for k, v in FULL.items() if k != "greeting"}, "Приветствие по стандарту: укажите"),
    ],
)
async def test_a_bad_mark_is_a_russian_400_and_nothing_is_kept(
    quality: Quality, marks: dict[str, int], says: str
) -> None:
    status, text = await quality.score("kozlova", "c1", marks)
    assert status == 400 and text.startswith(says)
    assert await quality.scores.of_recording("c1") == [] and await quality.scored() == []


async def test_a_browser_session_must_echo_its_csrf_token(quality: Quality) -> None:
    assert (await quality.score("browser", "c1", FULL))[0] == 403
    assert (await quality.score("browser", "c1", FULL, csrf_token="s3cret"))[0] == 303
    assert [s.auditor_id for s in await quality.scores.of_recording("c1")] == ["petrova"]


async def test_an_unknown_recording_and_a_bad_period_are_refused_in_russian(
    quality: Quality,
) -> None:
    assert await quality.get("kozlova", "/quality/recordings/nosuch") == (
        404,
        "нет такой записи разговора оператора",
    )
    status, text = await quality.get("kozlova", "/quality?period=ноябрь")
    assert (status, text) == (
        400,
        "период: месяц (2026-11), неделя ISO (2026-W48) или день (2026-11-27)",
    )


def test_the_shipped_criteria_load() -> None:
    assert [c.key for c in load_criteria(SHIPPED)] == list(FULL)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "criteria:\n  - key: greeting\n    title: А\n    weight: 1\n    max_points: 0\n",
            ":5: max_points must be between 1 and 100, got 0",
        ),
        (
            "criteria:\n  - key: greeting\n    title: А\n    weight: 0\n    max_points: 5\n",
            ":4: weight must be more than 0",
        ),
        (
            "criteria:\n  - key: a\n    title: А\n    weight: 1\n    max_points: 5\n"
            "  - key: a\n    title: Б\n    weight: 1\n    max_points: 5\n",
            ":6: duplicate criterion 'a'",
        ),
        (
            "criteria:\n  - key: a\n    title: А\n    wieght: 1\n    max_points: 5\n",
            ":4: unknown field 'wieght'",
        ),
    ],
)
def test_a_broken_criteria_file_is_reported_at_its_line(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "quality.yaml"
    path.write_text(text)
    with pytest.raises(YamlFileError) as caught:
        load_criteria(path)
    assert str(caught.value).startswith(f"{path}{says}")


async def test_a_broken_edit_stops_scoring_with_its_file_and_line(quality: Quality) -> None:
    quality.criteria_file.write_text("criteria:\n  - key: Bad\n")
    status, text = await quality.get("kozlova", "/quality/recordings/c1")
    assert status == 503
    assert text.startswith(f"файл критериев с ошибкой: {quality.criteria_file}:2:")
    assert (await quality.score("kozlova", "c1", FULL))[0] == 503
    assert await quality.scored() == []
