"""The node's call-facts writer journals where `[reporting]` says: a controller restarted after
an outage writes what its predecessor journaled, and the directory is the service's only."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, date, datetime
from pathlib import Path

from controllers import WITHOUT_RECORDER, controller_settings, started

from reporting.fact_journal import FactJournal
from reporting.fact_store import Fact, NewFact


async def test_a_restarted_node_writes_what_the_last_one_journaled(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "journal"
    left = FactJournal(directory, 1 << 20)  # what a node stopped during an outage left
    left.open()
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert left.append(NewFact(Fact("journaled-call", "88001000001", at, date(2026, 12, 1), 12)))
    left.close()
    settings = controller_settings(
        tmp_path,
        {
            **WITHOUT_RECORDER,
            "HOTLINE_REPORTING_JOURNAL_DIR": str(directory),
            "HOTLINE_REPORTING_JOURNAL_MAX_MB": "3",
        },
    )
    async with started(settings) as node:
        assert node.reporting is not None
        writer = node.reporting.facts.writer
        await asyncio.wait_for(writer.idle(), 20)
        fact = await node.reporting.facts.store.get("journaled-call")
        assert fact is not None and fact["started_at"] == at
        assert writer.journal is not None and writer.journal.max_bytes == 3 * 1024 * 1024
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert sorted(path.name for path in directory.iterdir()) == ["journal.lock"]
