"""Retention of contacts and attachments: terms from dialplans/retention.yaml, anonymised
contacts keep their statistics, attachments are crypto-shredded; a hand-driven clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from feedback_kit import DAY, PDF, REPOSITORY, b64, bearer, needs_clamav, office

from hotline.auth import Actor
from hotline.yamldoc import YamlFileError
from recorder.retention import RetentionPolicy
from workspace.model import Category, ContactChannel, ContactDraft
from workspace.retention import ContactRetentionTerms

SYSTEM = Actor("test", "system", kind="system")
FORM = {
    "name": "Петрова Анна",
    "phone": "89161112233",
    "description": "Ошибка в СНИЛС 112-233-445 95",
    "category": "wrong_data",
}


def test_the_shipped_file_names_both_terms_and_the_recorder_still_reads_it() -> None:
    shipped = REPOSITORY / "dialplans" / "retention.yaml"
    terms = ContactRetentionTerms.load(shipped)
    assert (terms.contacts_days, terms.attachments_days) == (1095, 365)
    assert RetentionPolicy.load(shipped).days_for("complaint") == 1095


def test_a_broken_term_is_named_at_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "retention.yaml"
    broken.write_text("default_days: 30\ncategories:\n  contacts: soon\n", encoding="utf-8")
    with pytest.raises(YamlFileError, match=r"retention.yaml:3: categories.contacts must be"):
        ContactRetentionTerms.load(broken)
    broken.write_text("default_days: 30\n", encoding="utf-8")
    assert ContactRetentionTerms.load(broken) == ContactRetentionTerms(30, 30)


@needs_clamav
async def test_files_are_shredded_then_contacts_anonymised_keeping_statistics(
    tmp_path: Path,
) -> None:
    async with office(tmp_path) as it:
        sent = await it.client.post(
            "/api/feedback",
            json={**FORM, "attachments": [{"name": "скан.pdf", "content_base64": b64(PDF)}]},
            headers=bearer("tok-portal"),
        )
        assert sent.status == 201
        registry = it.service.registry
        (contact,) = await registry.history(
            phone="79161112233", application=None, actor=SYSTEM, source="t"
        )
        call = await registry.open(
            ContactDraft(ContactChannel.CALL, caller_phone="79161112233", caller_name="Петрова",
                         description="звонок", group="help", operator_id="ivanova"),
            actor=SYSTEM, source="t",
        )  # fmt: skip
        await registry.close(
            call.number, resolution="объяснил порядок", category=Category.DOCUMENTS,
            first_contact_resolution=True, actor=SYSTEM, source="t",
        )  # fmt: skip
        await registry.rate(call.number, 5)
        (attachment,) = await it.service.feedback.attachments.of_contact(contact.number)
        retention = it.service.retention

        it.clock.advance(364 * DAY)  # within both terms: nothing happens
        first = await retention.run()
        assert first.anonymised == [] and first.shredded == [] and len(it.stored_files()) == 1

        it.clock.advance(2 * DAY)  # past the attachments' 365 days, not the contacts' 1095
        second = await retention.run()
        assert second.shredded == [attachment.id] and it.stored_files() == []
        reader = Actor("ivanova", "operator")
        assert await it.service.feedback.attachments.read(attachment.id, actor=reader,
                                                          source="t") is None  # fmt: skip
        kept = await registry.view(contact.number, actor=SYSTEM, source="t")
        assert kept is not None and kept.caller_name == "Петрова Анна"

        it.clock.advance(730 * DAY)  # 1096 days after both contacts closed or opened
        third = await retention.run()
        assert sorted(third.anonymised) == sorted([str(contact.number), str(call.number)])
        gone = await registry.view(call.number, actor=SYSTEM, source="t")
        assert gone is not None
        assert (gone.caller_phone, gone.caller_name, gone.description, gone.resolution) == (
            "", "", "", "",
        )  # fmt: skip
        # what the statistics need stays
        assert (gone.channel, gone.category, gone.group, gone.operator_id) == (
            ContactChannel.CALL, Category.DOCUMENTS, "help", "ivanova",
        )  # fmt: skip
        assert (gone.rating, gone.first_contact_resolution, gone.state.value) == (
            5,
            True,
            "resolved",
        )
        assert await registry.search("СНИЛС", actor=SYSTEM, source="t") == []
        assert (await retention.run()).anonymised == []  # done once
        actions = [(e.user_id, e.action) for e in await it.audit.entries()]
        assert actions.count(("contacts-retention", "contact.retention")) == 2
