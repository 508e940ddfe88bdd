"""Nothing lost, nothing twice: each fault done to real processes mid fan-out, on SQLite and
on PostgreSQL, judged by what the robot fake received.

The short form (a few hundred villages); ``bench/faults.py`` runs the same scenarios with 2,000.
"""

from __future__ import annotations

import shutil

import pytest

from tests.faults import scenarios

VILLAGES = 240

pytestmark = [
    pytest.mark.redis_server,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

CASES = [
    (fault, db)
    for db in ("sqlite", "postgres")
    for fault in scenarios.FAULTS
    if not (fault == "postgres" and db == "sqlite")
]


@pytest.mark.parametrize(("fault", "database"), CASES)
async def test_every_village_is_reached_and_duplicates_stay_within_what_was_in_flight(
    fault, database, tmp_path
):
    if database == "postgres":
        from tests.servers import pg_bin

        if pg_bin("initdb") is None:
            pytest.skip("PostgreSQL is not installed")
    report = await scenarios.run(fault, database, VILLAGES, tmp_path)
    v = report.verdict
    assert v.missing == [], report.line()
    assert v.statuses.get("delivered", 0) == VILLAGES, report.line()
    assert v.extra_messages <= report.in_flight_bound, (report.line(), v.duplicates)
    assert report.workers_alive == report.workers_expected, report.line()
    assert v.seconds_after_fault <= 120, report.line()
    if fault == "sigterm":
        assert report.exit_code == 0 and report.stopped_in is not None
        assert report.stopped_in < 10, report.line()
    if fault == "provider":  # no worker was harmed: the two shared the fan-out
        assert len(report.shares) == 2 and min(report.shares) >= VILLAGES // 4, report.line()
        assert report.injected.get("502", 0) > VILLAGES // 10, report.line()
        assert report.injected.get("stalled", 0) > 0, report.line()
