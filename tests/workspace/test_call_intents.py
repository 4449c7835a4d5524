"""The app's "call the hotline" button: a one-time code tied to the phone and application the
app's backend vouches for; and the backend's view of that citizen's contacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from databases import DATABASE_KINDS, empty_database
from feedback_kit import bearer, office

from hotline.auth import Actor
from workspace.model import ContactChannel, ContactDraft

CITIZEN = {"phone": "+7 916 123-45-67", "application": "1234567897"}


async def test_a_code_works_once_from_the_phone_that_asked_for_it(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        answer = await it.client.post(
            "/api/app/call-intents", json=CITIZEN, headers=bearer("tok-app")
        )
        body = await answer.json()
        assert answer.status == 201 and len(body["code"]) == 6 and body["code"].isdigit()
        assert body["valid_seconds"] == 300
        code = body["code"]
        # caller ID alone proves nothing: another phone with the right code gets nothing
        assert await it.service.redeem("+79997654321", code) is None
        assert await it.service.redeem("89161234567", code) == "1234567897"
        assert await it.service.redeem("89161234567", code) is None  # spent


async def test_an_expired_code_and_guessed_codes_give_nothing(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        first = await it.client.post(
            "/api/app/call-intents", json=CITIZEN, headers=bearer("tok-app")
        )
        code = (await first.json())["code"]
        it.clock.advance(301)
        assert await it.service.redeem("79161234567", code) is None
        fresh = await it.client.post(
            "/api/app/call-intents", json=CITIZEN, headers=bearer("tok-app")
        )
        code = (await fresh.json())["code"]
        wrong = [c for c in ("000000", "111111", "222222", "333333") if c != code][:3]
        for guess in wrong:  # a forger with the citizen's caller ID tries codes
            assert await it.service.redeem("79161234567", guess) is None
        # three wrong codes burnt the live one: even the right code no longer works
        assert await it.service.redeem("79161234567", code) is None


async def test_codes_are_rate_limited_per_phone_and_need_the_scope(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        for _ in range(5):
            ok = await it.client.post(
                "/api/app/call-intents", json=CITIZEN, headers=bearer("tok-app")
            )
            assert ok.status == 201
        refused = await it.client.post(
            "/api/app/call-intents", json=CITIZEN, headers=bearer("tok-app")
        )
        assert refused.status == 429
        assert (await refused.json())["error"].startswith("Слишком много кодов")
        it.clock.advance(3601)
        again = await it.client.post(
            "/api/app/call-intents", json=CITIZEN, headers=bearer("tok-app")
        )
        assert again.status == 201
        bad = await it.client.post(
            "/api/app/call-intents", json={**CITIZEN, "application": "1234567890"},
            headers=bearer("tok-app"),
        )  # fmt: skip
        assert bad.status == 400 and (await bad.json())["error"] == "Неверный номер заявления."
        for token in ("tok-portal", "tok-ivanova"):
            denied = await it.client.post(
                "/api/app/call-intents", json=CITIZEN, headers=bearer(token)
            )
            assert denied.status == 403


async def test_the_apps_backend_reads_only_that_citizens_contacts_under_audit(
    tmp_path: Path,
) -> None:
    async with office(tmp_path) as it:
        registry = it.service.registry
        operator = Actor("ivanova", "operator")
        mine = await registry.open(
            ContactDraft(ContactChannel.CALL, caller_phone="79161234567", caller_name="Иванов",
                         description="не работает вход", operator_id="ivanova"),
            actor=operator, source="test",
        )  # fmt: skip
        await registry.open(
            ContactDraft(ContactChannel.CALL, caller_phone="79990000000", description="чужое"),
            actor=operator, source="test",
        )  # fmt: skip
        answer = await it.client.get("/api/app/contacts", params=CITIZEN, headers=bearer("tok-app"))
        body = await answer.json()
        assert answer.status == 200
        assert [c["number"] for c in body["contacts"]] == [str(mine.number)]
        shown = body["contacts"][0]
        assert shown["state"] == "open" and shown["category"] == "Другое"
        assert "operator_id" not in shown and "description" not in shown
        last = (await it.audit.entries())[-1]
        assert (last.user_id, last.action) == ("app", "contact.history")
        missing = await it.client.get(
            "/api/app/contacts", params={"phone": "1"}, headers=bearer("tok-app")
        )
        assert missing.status == 400
        denied = await it.client.get(
            "/api/app/contacts", params=CITIZEN, headers=bearer("tok-portal")
        )
        assert denied.status == 403


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_codes_and_feedback_behave_alike_on_both_databases(tmp_path: Path, kind: str) -> None:
    async with (
        empty_database(kind, tmp_path / "w.sqlite3", "feedback") as url,
        office(tmp_path, url) as it,
    ):
        answer = await it.client.post(
            "/api/app/call-intents", json=CITIZEN, headers=bearer("tok-app")
        )
        code = (await answer.json())["code"]
        assert (
            await it.service.redeem("79161234567", "999999" if code != "999999" else "0" * 6)
            is None
        )
        assert await it.service.redeem("79161234567", code) == "1234567897"
        sent = await it.client.post(
            "/api/feedback",
            json={"name": "Иванов", "phone": CITIZEN["phone"], "description": "вопрос",
                  "category": "other", "application": CITIZEN["application"]},
            headers=bearer("tok-portal"),
        )  # fmt: skip
        assert sent.status == 201
        listed = await it.client.get("/api/app/contacts", params=CITIZEN, headers=bearer("tok-app"))
        numbers = [c["number"] for c in (await listed.json())["contacts"]]
        assert numbers == [(await sent.json())["confirmation_number"]]
        it.clock.advance(400)
        assert (await it.service.retention.run()).codes_deleted == 1
