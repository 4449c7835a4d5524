"""The quality part's port over the real recorder tables: the web page's sample is the one
`hotline recordings sample` draws (same period, same picks), audited as `sample`, and each
recording's operator is the one the recorder noted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from databases import migrated_engine

from controller.quality_ports import RecorderSamples
from hotline.audit import AuditLog
from hotline.auth import Actor
from recorder.models import RecordingStore, State
from recorder.sampling import draw_sample, parse_period

AUDITOR = Actor("kozlova", "quality_auditor")


async def test_the_pages_sample_is_the_recorders_and_is_audited(tmp_path: Path) -> None:
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.sqlite3'}") as engine:
        store = RecordingStore(engine)
        start = datetime(2026, 11, 2, 9, tzinfo=UTC)
        for n in range(8):
            call_id = f"call-{n}"
            operator = "op1" if n < 6 else "op2"
            await store.register(
                call_id, format="opus", started_at=start + timedelta(hours=n), operator=operator
            )
            await store.update(call_id, state=State.VERIFIED.value, wrapped_key=b"k")
        # not playable: never verified; and one of December
        await store.register("spooled", format="opus", started_at=start, operator="op1")
        await store.register(
            "december", format="opus", started_at=datetime(2026, 12, 1, tzinfo=UTC), operator="op1"
        )
        await store.update("december", state=State.VERIFIED.value, wrapped_key=b"k")
        audit = AuditLog(engine)
        port = RecorderSamples(engine, audit)

        picks = await port.sample(AUDITOR, "2026-11", 3, "127.0.0.1")

        cli = await draw_sample(
            engine, audit, AUDITOR, period=parse_period("2026-11"), per_operator=3, source="cli"
        )
        assert picks == cli.picks
        assert sorted(picks) == ["op1", "op2"] and len(picks["op1"]) == 3
        assert set(picks["op1"]) <= {f"call-{n}" for n in range(6)}
        assert picks["op2"] == ["call-6", "call-7"]
        first = next(e for e in await audit.entries() if e.action == "sample")
        assert (first.user_id, first.source) == ("kozlova", "127.0.0.1")
        assert json.loads(first.detail)["picks"] == picks
        assert await port.operator_of("call-7") == "op2"
        assert await port.operator_of("nosuch") is None
