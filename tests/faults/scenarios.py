"""One fault, done to a real two-worker Gongkai in the middle of a fan-out, and what came of it.

Shared by ``tests/faults/`` (a short form, a few hundred villages) and ``bench/faults.py`` (the
full form, 2,000 villages, by hand).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from tests.faults.cluster import (
    Cluster,
    Faults,
    Verdict,
    leases_by_pid,
    prepare,
    publish,
    robot,
    until,
    verdict,
)
from tests.servers import PgServer, RedisServer

FAULTS = ("kill", "sigterm", "redis", "postgres", "provider")
ITEM = "fault-2026-0001"


@dataclass
class Report:
    fault: str
    database: str
    verdict: Verdict
    in_flight_bound: int  # what the fault may make a worker send twice
    workers_alive: int  # worker processes still running afterwards (the killed one aside)
    workers_expected: int
    stopped_in: float | None  # SIGTERM: seconds until the worker exited
    exit_code: int | None
    injected: dict[str, int]
    shares: list[int]  # deliveries each worker delivered, largest first

    @property
    def ok(self) -> bool:
        v = self.verdict
        return (
            not v.missing
            and v.statuses.get("delivered", 0) == v.targets
            and v.extra_messages <= self.in_flight_bound
            and self.workers_alive == self.workers_expected
            and v.seconds_after_fault <= 120
        )

    def line(self) -> str:
        v = self.verdict
        extra = (
            f"; stopped in {self.stopped_in:.1f} s (exit {self.exit_code})"
            if self.stopped_in
            else ""
        )
        return (
            f"{self.fault:<9} {self.database:<9} reached {v.reached}/{v.targets}, "
            f"missing {len(v.missing)}, "
            f"duplicates {v.extra_messages} (bound {self.in_flight_bound}), "
            f"all ended {v.seconds_after_fault:.1f} s after the fault, "
            f"workers alive {self.workers_alive}/{self.workers_expected}{extra}; "
            f"delivered by each worker {'/'.join(map(str, self.shares))}; "
            f"injected {dict(self.injected) or '-'}"
        )


async def run(fault: str, database: str, villages: int, tmp: Path) -> Report:
    """Two workers, one item to every village, ``fault`` at about a third of the way."""
    redis = RedisServer()
    pg = PgServer() if database == "postgres" else None
    redis.start()
    if pg is not None:
        pg.start()
    faults = Faults(latency=0.15, seed=11)
    if fault == "provider":
        faults.fail_rate, faults.stall_rate, faults.stall_seconds = 0.3, 0.05, 2.0
    database_url = pg.url if pg else f"sqlite+aiosqlite:///{tmp / 'gongkai.sqlite3'}"
    cluster: Cluster | None = None
    try:
        async with robot(faults) as (url, state):
            cluster = Cluster(tmp, database_url, redis.url, url, concurrency=10)
            await prepare(cluster, villages)
            workers = [cluster.start_worker(), cluster.start_worker()]

            async def started() -> bool:
                return all(
                    "Starting worker" in log.read_text(errors="replace") for log in cluster.logs
                )

            await until(started, 60)
            targets = await publish(cluster, ITEM)
            assert targets == villages

            async def a_third_sent() -> bool:
                return len(state.messages) >= villages // 3

            await until(a_third_sent, 120, every=0.02)
            bound, expected, stopped_in, exit_code = 0, 2, None, None
            if fault == "kill":
                busiest = (await leases_by_pid(cluster)).most_common(1)
                victim = next(p for p in workers if busiest and p.pid == busiest[0][0])
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(10)
                bound, expected = 2 * cluster.concurrency, 1  # sending + awaiting commit
            elif fault == "sigterm":
                victim = workers[0]
                began = time.monotonic()
                victim.send_signal(signal.SIGTERM)
                await asyncio.to_thread(victim.wait, 30)
                stopped_in, exit_code, expected = time.monotonic() - began, victim.returncode, 1
            elif fault == "redis":
                redis.kill()
                await asyncio.sleep(2)  # the outage itself
                redis.start()  # empty: every queued job is gone
            elif fault == "postgres":
                assert pg is not None
                await asyncio.to_thread(pg.stop)
                await asyncio.sleep(10)  # the outage itself
                await asyncio.to_thread(pg.start)
            fault_done = time.monotonic()
            v = await verdict(cluster, ITEM, state, villages, fault_done)
            alive = sum(1 for p in workers if p.poll() is None)
            shares = sorted((await leases_by_pid(cluster, "delivered")).values(), reverse=True)
            return Report(
                fault=fault,
                database=database,
                verdict=v,
                in_flight_bound=bound,
                workers_alive=alive,
                workers_expected=expected,
                stopped_in=stopped_in,
                exit_code=exit_code,
                injected=dict(faults.injected),
                shares=shares,
            )
    finally:
        if cluster is not None:
            cluster.stop_all()
        redis.close()
        if pg is not None:
            pg.close()
