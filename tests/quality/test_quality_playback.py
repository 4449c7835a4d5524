"""From the browser's side, through the access middleware and a session cookie: an auditor
draws the sample, opens the scoring form, plays the recording and cuts a clip with the URLs
the form gives (the recorder's own audited playback and clip), and saves a score echoing the
form's CSRF token. The audit trail has each step, by the same person."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from databases import migrated_engine
from desk_browser import by_id, chromium_or_skip, shot, wait_for
from ports import bound_port
from stored_recordings import make_tone, store_encrypted

from controller.quality_ports import RecorderSamples
from hotline.access import access_middleware
from hotline.audit import AuditLog
from hotline.auth import Actor, TokenBook
from quality.criteria import load_criteria
from quality.http import QualityPages, add_quality_routes
from quality.scores import ScoreStore
from recorder import keys
from recorder.http import add_routes
from recorder.models import RecordingStore, State
from recorder.playback import RecordingAccess
from recorder.storage import LocalStorage

SHIPPED = Path(__file__).parents[2] / "dialplans" / "quality.yaml"
SESSIONS = {
    "s-auditor": Actor("kozlova", "quality_auditor", csrf_token="tok-1"),
    "s-operator": Actor("op-1", "operator", csrf_token="tok-2"),
}
CALL = "1764579600.7"


async def by_cookie(request: web.Request) -> Actor | None:
    return SESSIONS.get(request.cookies.get("session", ""))


@pytest.fixture
def tone(tmp_path: Path) -> bytes:
    return make_tone(tmp_path / "tone.ogg", 6)  # real Opus, so the recorder's ffmpeg can cut it


@dataclass
class Stack:
    app: web.Application
    audit: AuditLog
    scores: ScoreStore


@pytest.fixture
async def stack(tmp_path: Path, tone: bytes) -> AsyncIterator[Stack]:
    """The recorder's API and the quality pages on one app behind the session middleware."""
    master = keys.MasterKeyStore(tmp_path / "keys")
    master.generate("recorder")
    key_ring = keys.KeyRing(master, "recorder")
    async with (
        migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'q.sqlite3'}") as engine,
        LocalStorage(tmp_path / "objects") as storage,
    ):
        store = RecordingStore(engine)
        started = datetime(2026, 11, 20, 10, tzinfo=UTC)
        await store.register(CALL, format="opus", started_at=started, operator="op-7")
        await store_encrypted(
            store, storage, key_ring, CALL, tone, state=State.VERIFIED.value, duration_seconds=6.0
        )
        audit = AuditLog(engine)
        app = web.Application(middlewares=[access_middleware(by_cookie)])
        add_routes(app, RecordingAccess(store, storage, key_ring, audit), TokenBook.of({}))
        pages = QualityPages(
            RecorderSamples(engine, audit),
            ScoreStore(engine),
            lambda: load_criteria(SHIPPED),
            audit,
            lambda: "2026-11",
        )
        add_quality_routes(app, pages)
        yield Stack(app, audit, ScoreStore(engine))


async def test_sample_play_clip_and_score_are_all_audited(stack: Stack, tone: bytes) -> None:
    app, audit = stack.app, stack.audit
    async with TestClient(TestServer(app)) as client:
        client.session.cookie_jar.update_cookies({"session": "s-auditor"})
        sample = await (await client.get("/quality?period=2026-11")).text()
        [link] = re.findall(r'<a href="(/quality/recordings/[^"]+)">', sample)
        form = await (await client.get(link.replace("&amp;", "&"))).text()
        [audio] = re.findall(r'<audio id="player"[^>]* src="([^"]+)"', form)
        [clip] = re.findall(r'<form id="clip" method="get" action="([^"]+)"', form)
        [csrf] = re.findall(r'name="csrf_token" value="([^"]+)"', form)

        played = await client.get(audio)
        assert played.status == 200 and await played.read() == tone
        cut = await client.get(clip, params={"from": "1", "to": "3"})
        assert cut.status == 200 and (await cut.read()).startswith(b"OggS")
        full = {"greeting": 5, "identification": 5, "correctness": 10, "politeness": 5}
        marks = {f"points_{k}": str(v) for k, v in (full | {"resolution": 10}).items()}
        marks["period"] = "2026-11"
        saved = await client.post(
            link.split("?")[0], data={**marks, "csrf_token": csrf}, allow_redirects=False
        )
        assert saved.status == 303

        client.session.cookie_jar.update_cookies({"session": "s-operator"})
        assert (await client.get(link.replace("&amp;", "&"))).status == 403
        assert (await client.get(audio)).status == 403  # the recorder refuses and audits

    trail = [(e.user_id, e.action, e.recording_id, e.outcome) for e in await audit.entries()]
    assert trail == [
        ("kozlova", "sample", None, "ok"),
        ("kozlova", "play", CALL, "ok"),
        ("kozlova", "clip", CALL, "ok"),
        ("kozlova", "quality.scored", CALL, "ok"),
        ("op-1", "play", CALL, "refused"),
    ]
    [score] = await stack.scores.of_recording(CALL)
    assert (score.operator_id, score.total_percent) == ("op-7", 100.0)


def _browse(base: str, shots: Path) -> dict[str, str]:
    """The auditor's visit, in a worker thread while the server serves on the test's loop."""
    driver = chromium_or_skip()
    try:
        driver.get(base + "/quality/none")  # a page of the site, to hold the session cookie
        driver.add_cookie({"name": "session", "value": "s-auditor", "path": "/"})
        driver.get(base + "/quality?period=2026-11")
        wait_for(driver, lambda d: "Контроль качества: 2026-11" in d.title)
        driver.find_element("css selector", "#sample a").click()
        wait_for(driver, lambda d: d.title.startswith("Оценка разговора"))
        # the player loads the audio through the recorder's audited playback
        driver.execute_script(
            "const a = document.getElementById('player'); a.preload = 'auto'; a.load();"
        )
        wait_for(driver, lambda d: d.execute_script(
            "return document.getElementById('player').readyState") >= 1)  # fmt: skip
        duration = driver.execute_script("return document.getElementById('player').duration")
        marks = {"greeting": 5, "identification": 4, "correctness": 7, "politeness": 5}
        for key, points in (marks | {"resolution": 5}).items():
            driver.find_element("name", f"points_{key}").send_keys(str(points))
        driver.find_element("name", "comment").send_keys("Не уточнил адрес")
        driver.find_element("css selector", "#score button").click()
        wait_for(driver, lambda d: d.find_elements("id", "saved"))
        shot(driver, shots, "score")
        seen = {"scores": by_id(driver, "scores").text, "url": driver.current_url}
        return seen | {"duration": str(duration)}
    finally:
        driver.quit()


async def test_an_auditor_scores_a_call_in_chromium(stack: Stack, tmp_path: Path) -> None:
    runner = web.AppRunner(stack.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        seen = await asyncio.to_thread(_browse, f"http://127.0.0.1:{bound_port(runner)}", shots)
    finally:
        await runner.cleanup()
    assert float(seen["duration"]) == pytest.approx(6, abs=0.5)  # the browser read the audio
    assert seen["url"].endswith(f"/quality/recordings/{CALL}?period=2026-11&saved=1")
    # (5/5 + 4/5 + 3*7/10 + 2*5/5 + 3*5/10) / 10 weights: 74 %
    assert "kozlova 74,0 % Не уточнил адрес" in seen["scores"]
    actions = [(e.user_id, e.action) for e in await stack.audit.entries()]
    assert ("kozlova", "play") in actions and ("kozlova", "quality.scored") in actions
    assert (shots / "score.png").stat().st_size > 0  # tmp_path/screenshots, to look at
