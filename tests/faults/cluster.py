"""Real processes for the fault tests and ``bench/faults.py``.

Debian's redis-server and PostgreSQL, ``gongkai worker`` processes started exactly as an
operator starts them (settings from the environment), and the WeCom robot fake made to fail on
purpose: a share of requests answered 502, a share left hanging past the worker's timeout. A
fault is done to a real process (kill -9, SIGTERM, a Redis restarted empty, PostgreSQL
stopped), and the verdict comes from the fake's own record of what it received.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from gongkai.sandbox import wecom_robot
from gongkai.sandbox.server import serve

ROOT = Path(__file__).resolve().parents[2]
COUNTY = "150627"


@dataclass
class Faults:
    """What the robot fake does to each send: fail with 502, or hang past the client's timeout.
    A failed or hung request is not a delivered message."""

    fail_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 3.0
    latency: float = 0.0  # every send takes this long: a fan-out lasts long enough to hurt
    seed: int = 7
    injected: Counter[str] = field(default_factory=Counter)

    def middleware(self) -> Any:
        rng = random.Random(self.seed)

        @web.middleware
        async def faults(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path.endswith("/webhook/send"):
                if self.latency:
                    await asyncio.sleep(self.latency)
                roll = rng.random()
                if roll < self.fail_rate:
                    self.injected["502"] += 1
                    return web.Response(status=502, text="bad gateway")
                if roll < self.fail_rate + self.stall_rate:
                    self.injected["stalled"] += 1
                    await asyncio.sleep(self.stall_seconds)
                    return web.Response(status=504, text="gateway timeout")
            return await handler(request)

        return faults


@asynccontextmanager
async def robot(faults: Faults) -> AsyncIterator[tuple[str, wecom_robot.RobotState]]:
    app, state = wecom_robot.make_app(valid_keys=None, rate_per_minute=1000)
    app.middlewares.append(faults.middleware())
    async with serve(app) as url:
        yield url, state


def county_directory(villages: int) -> str:
    """One county, towns of 100 villages, one village WeChat group (robot) per village."""
    lines = ["regions:", f'  - code: "{COUNTY}"', "    name: 伊金霍洛旗", "    children:"]
    for t in range((villages + 99) // 100):
        town = f"{COUNTY}{100 + t:03d}"
        lines += [f'      - code: "{town}"', f"        name: 第{t + 1}镇", "        children:"]
        for v in range(min(100, villages - t * 100)):
            code = f"{town}{200 + v:03d}"
            lines += [
                f'          - code: "{code}"',
                f"            name: 第{t + 1}镇第{v + 1}村",
                "            targets:",
                f"              - {{channel: village_group, robot_key: robot-{code}}}",
            ]
    return "\n".join(lines) + "\n"


def notice(item_id: str) -> dict[str, Any]:
    """The sample notice (tests/support.py), to every village of the county."""
    from tests.support import item

    return item(
        id=item_id, kind="notice", doc_number=None, regions=[COUNTY], channels=["village_group"]
    )


@dataclass
class Cluster:
    """The settings every process shares, and the worker processes."""

    data_dir: Path
    database_url: str
    redis_url: str
    robot_url: str
    concurrency: int = 25
    lease_seconds: float = 3.0
    reconcile_seconds: float = 1.0
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GONGKAI_")}
        env.update(
            GONGKAI_DATA_DIR=str(self.data_dir),
            GONGKAI_DATABASE_URL=self.database_url,
            GONGKAI_REDIS_URL=self.redis_url,
            GONGKAI_SECRET_KEY="fault-test-secret-key",
            GONGKAI_PUBLIC_URL="http://gongkai.test",
            GONGKAI_WECOM_API_BASE=self.robot_url,
            GONGKAI_QUIET_HOURS="off",
            GONGKAI_WORKER_CONCURRENCY=str(self.concurrency),
            GONGKAI_LEASE_SECONDS=str(self.lease_seconds),
            GONGKAI_RECONCILE_SECONDS=str(self.reconcile_seconds),
            GONGKAI_RETRY_BASE_SECONDS="0.2",
            GONGKAI_RETRY_MAX_SECONDS="2",
            GONGKAI_HTTP_TIMEOUT_SECONDS="1",
            GONGKAI_LOG_LEVEL="INFO",
            PYTHONPATH=str(ROOT),
        )
        return env

    def settings(self) -> Any:
        from tests.support import settings_for

        return settings_for(
            self.data_dir,
            database_url=self.database_url,
            redis_url=self.redis_url,
            secret_key="fault-test-secret-key",
            wecom_api_base=self.robot_url,
        )

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.data_dir / f"worker-{len(self.workers)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "gongkai.cli", "worker"],
            env=self.env(),
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        self.logs.append(log)
        return proc

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def tail(self, lines: int = 30) -> str:
        out = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


async def prepare(cluster: Cluster, villages: int) -> None:
    from gongkai.storage.crypto import Sealer
    from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
    from gongkai.storage.directory import import_directory, parse_directory

    s = cluster.settings()
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await import_directory(
                session, parse_directory(county_directory(villages)), Sealer(s.secret_key)
            )
    finally:
        await engine.dispose()


async def publish(cluster: Cluster, item_id: str) -> int:
    from tests.support import ingest

    result = await ingest(cluster.settings(), cluster.redis_url, notice(item_id))
    return len(result.deliveries)


async def statuses(cluster: Cluster, item_id: str) -> Counter[str]:
    from sqlalchemy import func, select

    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Delivery

    engine = make_engine(cluster.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.item_id == item_id)
                .group_by(Delivery.status)
            )
            return Counter({status: n for status, n in rows.all()})
    except Exception:  # the database is down on purpose
        return Counter()
    finally:
        await engine.dispose()


async def leases_by_pid(cluster: Cluster, status: str = "sending") -> Counter[int]:
    """Rows each worker process holds now, or (``status="delivered"``) delivered
    (``lease_owner`` is host:pid:tag and names the worker that last worked on the row)."""
    from sqlalchemy import func, select

    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Delivery

    engine = make_engine(cluster.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Delivery.lease_owner, func.count())
                .where(Delivery.status == status, Delivery.lease_owner.is_not(None))  # type: ignore[union-attr]
                .group_by(Delivery.lease_owner)
            )
            return Counter({int(owner.split(":")[1]): n for owner, n in rows.all()})
    finally:
        await engine.dispose()


async def until(condition: Any, seconds: float, every: float = 0.1) -> float:
    """Wait for ``await condition()``; returns the seconds it took, raises TimeoutError."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110  (the condition lives in other processes)
            await asyncio.sleep(every)
    return time.monotonic() - started


@dataclass
class Verdict:
    targets: int
    reached: int
    missing: list[str]
    duplicates: dict[str, int]
    statuses: Counter[str]
    seconds_after_fault: float

    @property
    def extra_messages(self) -> int:
        return sum(self.duplicates.values())


async def verdict(
    cluster: Cluster, item_id: str, state: wecom_robot.RobotState, targets: int, since: float
) -> Verdict:
    """Wait until every delivery has ended (two minutes at most), then read the fake's record."""

    async def ended() -> bool:
        counts = await statuses(cluster, item_id)
        return sum(counts[s] for s in ("delivered", "dead", "cancelled")) == targets

    try:
        await until(ended, 120, every=0.25)
    except TimeoutError:
        pass
    took = time.monotonic() - since
    received = Counter(m.key for m in state.messages)
    wanted = set(_robot_keys(targets))
    return Verdict(
        targets=targets,
        reached=len(wanted & set(received)),
        missing=sorted(wanted - set(received)),
        duplicates={k: n - 1 for k, n in received.items() if n > 1},
        statuses=await statuses(cluster, item_id),
        seconds_after_fault=took,
    )


def _robot_keys(villages: int) -> list[str]:
    keys = []
    for t in range((villages + 99) // 100):
        town = f"{COUNTY}{100 + t:03d}"
        keys += [f"robot-{town}{200 + v:03d}" for v in range(min(100, villages - t * 100))]
    return keys
