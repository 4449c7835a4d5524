"""The feedback form: operators on the desk and the portal through the API; every accepted
form is a numbered contact, every refused one stores nothing and says why in Russian."""

from __future__ import annotations

import stat
from pathlib import Path

import aiohttp
from feedback_kit import EICAR, PDF, Office, b64, bearer, needs_clamav, office

from hotline.auth import Actor
from hotline.security import SECURITY_EVENTS
from workspace.model import Category, ContactChannel
from workspace.numbers import parse_contact_number

FORM = {
    "name": "Иванов Иван",
    "phone": "+7 (916) 123-45-67",
    "application": "1234567897",
    "description": "Не приходит уведомление о статусе заявления.",
    "category": "application_status",
    "expected_by": "2026-03-10",
}
SYSTEM = Actor("test", "system", kind="system")


def multipart(fields: dict[str, str], files: list[tuple[str, bytes, str]]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", "form-secret")
    for name, value in fields.items():
        form.add_field(name, value)
    for filename, content, declared in files:
        form.add_field("attachments", content, filename=filename, content_type=declared)
    return form


async def contacts_of(office_: Office, phone: str = "79161234567") -> list[object]:
    return await office_.service.registry.history(
        phone=phone, application=None, actor=SYSTEM, source="test"
    )


@needs_clamav
async def test_an_operator_registers_a_form_with_a_pdf_kept_encrypted(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        page = await it.client.get("/desk/feedback", headers=bearer("tok-form"))
        assert page.status == 200 and "Форма обратной связи" in await page.text()
        sent = await it.client.post(
            "/desk/feedback",
            data=multipart(FORM, [("справка.pdf", PDF, "application/pdf")]),
            headers=bearer("tok-form"),
        )
        html = await sent.text()
        assert sent.status == 200, html
        assert "Номер подтверждения" in html and "справка.pdf" in html
        found = await contacts_of(it)
        assert len(found) == 1
        contact = found[0]
        assert str(contact.number) in html  # the confirmation number is the contact's
        assert contact.channel == ContactChannel.FEEDBACK and contact.caller_name == "Иванов Иван"
        assert contact.application_number == "1234567897" and contact.operator_id == "ivanova"
        assert contact.category == Category.APPLICATION_STATUS
        assert str(contact.expected_by) == "2026-03-10"
        # the file on disk is not the plaintext, and nobody else may read it
        (on_disk,) = it.stored_files()
        ciphertext = on_disk.read_bytes()
        assert PDF not in ciphertext and b"%PDF" not in ciphertext
        assert "Иванова".encode() not in ciphertext
        assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600
        assert stat.S_IMODE(on_disk.parent.stat().st_mode) == 0o700
        # the operator downloads it back, and the download is audited
        (attachment,) = await it.service.feedback.attachments.of_contact(contact.number)
        got = await it.client.get(
            f"/desk/attachments/{attachment.id}", headers=bearer("tok-ivanova")
        )
        assert got.status == 200 and await got.read() == PDF
        assert got.headers["Content-Type"] == "application/pdf"
        assert got.headers["Content-Disposition"].startswith("attachment;")
        entries = await it.audit.entries()
        assert (entries[-1].user_id, entries[-1].action, entries[-1].recording_id) == (
            "ivanova", "contact.attachment.read", attachment.id,
        )  # fmt: skip


@needs_clamav
async def test_the_eicar_file_is_refused_with_a_clear_message_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    bad_input = SECURITY_EVENTS.labels(category="bad_input")
    before = bad_input._value.get()
    async with office(tmp_path) as it:
        answer = await it.client.post(
            "/api/feedback",
            json={**FORM, "attachments": [{"name": "счёт.txt", "content_base64": b64(EICAR)}]},
            headers=bearer("tok-portal"),
        )
        body = await answer.json()
        assert answer.status == 400
        assert "антивирус обнаружил угрозу" in body["error"] and "счёт.txt" in body["error"]
        assert "EICAR" in body["error"]
        assert bad_input._value.get() == before + 1  # a security event, on the dashboards
        page = await it.client.post(
            "/desk/feedback",
            data=multipart(FORM, [("eicar.com", EICAR, "text/plain")]),
            headers=bearer("tok-form"),
        )
        html = await page.text()
        assert page.status == 400 and "антивирус обнаружил угрозу" in html
        assert 'value="Иванов Иван"' in html  # what was typed is kept for the next try
        assert await contacts_of(it) == [] and it.stored_files() == []


@needs_clamav
async def test_the_portal_gets_the_confirmation_number_and_the_file(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        answer = await it.client.post(
            "/api/feedback",
            json={**FORM, "attachments": [{"name": "a.pdf", "content_base64": b64(PDF)}]},
            headers=bearer("tok-portal"),
        )
        body = await answer.json()
        assert answer.status == 201, body
        number = parse_contact_number(body["confirmation_number"])
        assert number is not None
        contact = await it.service.registry.view(number, actor=SYSTEM, source="test")
        assert contact is not None and contact.operator_id is None  # nobody on the desk
        assert [a["name"] for a in body["attachments"]] == ["a.pdf"]
        entries = await it.audit.entries()
        assert ("portal", "contact.open") in [(e.user_id, e.action) for e in entries]


async def test_oversize_and_disguised_files_are_refused_before_anything_is_kept(
    tmp_path: Path,
) -> None:
    async with office(tmp_path, max_attachment_bytes=1024) as it:
        big = PDF + b"0" * 2048
        answer = await it.client.post(
            "/api/feedback",
            json={**FORM, "attachments": [{"name": "big.pdf", "content_base64": b64(big)}]},
            headers=bearer("tok-portal"),
        )
        assert answer.status == 400
        assert (await answer.json())["error"] == "Файл «big.pdf» больше 1 КБ."
        # an executable named .pdf: the type comes from the bytes, not the name
        answer = await it.client.post(
            "/api/feedback",
            json={
                **FORM,
                "attachments": [{"name": "отчёт.pdf", "content_base64": b64(b"\x7fELF\x02\x01")}],
            },
            headers=bearer("tok-portal"),
        )
        error = (await answer.json())["error"]
        assert answer.status == 400 and "такой тип не принимается" in error and "PDF" in error
        assert await contacts_of(it) == [] and it.stored_files() == []


async def test_a_scanner_that_cannot_run_refuses_files_never_passes_them(tmp_path: Path) -> None:
    async with office(tmp_path, clamscan_command=str(tmp_path / "no-such-clamscan")) as it:
        answer = await it.client.post(
            "/api/feedback",
            json={**FORM, "attachments": [{"name": "a.pdf", "content_base64": b64(PDF)}]},
            headers=bearer("tok-portal"),
        )
        assert answer.status == 400
        assert "проверка на вирусы недоступна" in (await answer.json())["error"]
        assert await contacts_of(it) == [] and it.stored_files() == []
        # a form without files does not need the scanner
        plain = await it.client.post("/api/feedback", json=FORM, headers=bearer("tok-portal"))
        assert plain.status == 201


async def test_every_wrong_field_is_named_in_russian_and_hostile_text_is_refused(
    tmp_path: Path,
) -> None:
    async with office(tmp_path) as it:
        bad = {
            "name": "",
            "phone": "12345",
            "application": "1234567890",  # the check digit fails
            "description": "ok\x00\x1b[2J",
            "category": "nonsense",
            "expected_by": "2020-01-01",
        }
        answer = await it.client.post("/api/feedback", json=bad, headers=bearer("tok-portal"))
        body = await answer.json()
        assert answer.status == 400
        assert body["fields"] == {
            "name": "Укажите имя.",
            "phone": "Неверный телефон: номер телефона: 11 цифр с 7 или 8 в начале или 10 цифр "
            "с 9 в начале.",
            "application": "Неверный номер заявления: в номере заявления ошибка: контрольная "
            "цифра не совпадает.",
            "description": "Недопустимые управляющие символы.",
            "category": "Выберите категорию обращения.",
            "expected_by": "Дата — не раньше сегодняшней и не позже чем через год.",
        }
        huge = {**FORM, "description": "я" * 5000, "name": 42}
        answer = await it.client.post("/api/feedback", json=huge, headers=bearer("tok-portal"))
        fields = (await answer.json())["fields"]
        assert fields == {"name": "Ожидается текст.", "description": "Не длиннее 4000 знаков."}
        too_big = await it.client.post(
            "/api/feedback", data=b"{" + b" " * (40 * 1024 * 1024) + b"}",
            headers={**bearer("tok-portal"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert too_big.status == 413
        assert await contacts_of(it) == []


async def test_markup_is_kept_as_text_and_shown_escaped(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        script = '<script>alert("x")</script>'
        page = await it.client.post(
            "/desk/feedback",
            data=multipart({**FORM, "name": script, "category": ""}, []),
            headers=bearer("tok-form"),
        )
        html = await page.text()
        assert page.status == 400 and "Выберите категорию обращения." in html
        assert script not in html and "&lt;script&gt;" in html
        sent = await it.client.post(
            "/api/feedback", json={**FORM, "description": script}, headers=bearer("tok-portal")
        )
        assert sent.status == 201
        (contact,) = await contacts_of(it)
        assert contact.description == script  # stored as typed, shown only escaped or as JSON


async def test_only_the_right_keys_and_people_reach_the_form(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        for token in ("tok-ivanova", "tok-other", "tok-app"):
            answer = await it.client.post("/api/feedback", json=FORM, headers=bearer(token))
            assert answer.status == 403, token
        assert (await it.client.get("/desk/feedback", headers=bearer("tok-portal"))).status == 403
        assert (await it.client.post("/api/feedback", json=FORM)).status == 401
        # a browser session must echo its form token
        stolen = aiohttp.FormData(FORM)
        assert (
            await it.client.post("/desk/feedback", data=stolen, headers=bearer("tok-form"))
        ).status == 403
        missing = await it.client.get(
            "/desk/attachments/" + "0" * 32, headers=bearer("tok-ivanova")
        )
        assert missing.status == 404
        assert await contacts_of(it) == []


async def test_a_form_larger_than_the_server_takes_is_refused_in_russian(tmp_path: Path) -> None:
    async with office(tmp_path) as it:
        huge = [("big.pdf", PDF + b"0" * (5 * 1024 * 1024), "application/pdf")]
        page = await it.client.post(
            "/desk/feedback", data=multipart(FORM, huge), headers=bearer("tok-ivanova")
        )
        assert page.status == 413
        assert "Слишком большой запрос: всё вместе до 4 МБ." in await page.text()
        assert await contacts_of(it) == [] and it.stored_files() == []
