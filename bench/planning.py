"""Planning benchmark: POST an item reaching 10,000 village groups and time what a publisher sees.

Run by hand:  python bench/planning.py [--targets 10000] [--runs 3] [--database-url …]

The county of ``bench/fanout.py`` (one gacha with N village-group robots), a `gongkai serve`
and one `gongkai worker` process, Redis, and the WeCom robot fake in this process (limits
off). Each run POSTs two items through the API, one after the other:

- a notice: the time to the 201, and planning's throughput (deliveries rendered and written per
  second, from the POST to ``planning.status`` done as ``GET /api/v1/items/{id}`` shows it);
- the same notice marked urgent: the time to its 201 and until its first message reaches the
  fake robot.

Each item is delivered completely before the next one is posted. Prints each run and the
medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import ITEM, directory_yaml, free_port, start_redis, wait_port  # noqa: E402


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gongkai.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def spawn(env: dict[str, str], command: str) -> subprocess.Popen:
    """A process as an operator starts it; its output in the data dir (``serve.log``, …)."""
    log = open(Path(env["GONGKAI_DATA_DIR"]) / f"{command}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "gongkai.cli", command], env=env, stdout=log, stderr=log
    )


async def wait_for(check: Any, limit: float, every: float = 0.05) -> float:
    """Poll ``await check()`` until true; the moment it was seen (perf_counter)."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if await check():
            return time.perf_counter()
        await asyncio.sleep(every)
    raise TimeoutError("gave up waiting")


async def one_run(http: Any, api: str, auth: dict[str, str], state: Any, n: int) -> dict:
    """The two POSTs of one run; returns its figures."""
    out: dict[str, float] = {}
    for urgent in (False, True):
        item_id = f"bench-plan-{uuid.uuid4().hex[:8]}"
        body = {**ITEM, "id": item_id, "urgent": urgent}
        before = len(state.messages)
        t0 = time.perf_counter()
        async with http.post(f"{api}/api/v1/items", json=body, headers=auth) as r:
            answer = await r.json()
            t_201 = time.perf_counter()
            assert r.status == 201, answer
        assert answer["planning"]["status"] == "pending", answer["planning"]
        key = "urgent" if urgent else "notice"
        out[f"{key}_201_ms"] = (t_201 - t0) * 1000
        if urgent:
            first = await wait_for(lambda b=before: _arrived(state, b), 30, every=0.001)
            out["urgent_first_message_ms"] = (first - t0) * 1000

        async def shown(item_id: str = item_id) -> dict:
            async with http.get(f"{api}/api/v1/items/{item_id}", headers=auth) as r:
                return await r.json()

        async def planned(item_id: str = item_id) -> bool:
            planning = (await shown(item_id))["planning"]
            if planning["status"] == "failed":
                raise RuntimeError(planning["error"])
            return planning["status"] == "done"

        done = await wait_for(planned, 300, every=0.02)
        total = (await shown())["planning"]["total"]
        assert total == n, total
        out[f"{key}_planning_per_s"] = n / (done - t0)

        async def published(item_id: str = item_id) -> bool:
            return (await shown(item_id))["status"] == "published"

        await wait_for(published, 600, every=0.2)
    return out


async def plan_queued(settings: Any, redis_url: str) -> int:
    """Run every planning still waiting to its end in this process, with a worker's own deps
    and job function: ``bench/fanout.py`` plans first so that it times sending alone."""
    from sqlalchemy import select

    from gongkai.dispatch.plan_job import plan_job
    from gongkai.dispatch.worker import close_deps, open_deps
    from gongkai.storage.models import PLANNING_OPEN, Item

    table = Item.__table__.c  # type: ignore[attr-defined]
    deps, engine = open_deps(settings, redis_url)
    try:
        async with deps.maker() as session:
            ids = (
                await session.execute(
                    select(table.id).where(
                        table.planning_status.in_([p.value for p in PLANNING_OPEN])
                    )
                )
            ).scalars()
            ids = list(ids)
        for item_id in ids:
            await plan_job({"deps": deps}, item_id)
        return len(ids)
    finally:
        await close_deps(deps, engine)


async def _arrived(state: Any, before: int) -> bool:
    return len(state.messages) > before


async def bench(args: argparse.Namespace) -> None:
    import aiohttp
    from aiohttp import web

    from gongkai.sandbox import wecom_robot

    n = args.targets
    tmp = tempfile.mkdtemp(prefix="gongkai-bench-plan-")
    redis_url, redis_handle = start_redis(tmp)
    app, state = wecom_robot.make_app(rate_per_minute=10**9)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    port = free_port()
    env = {
        **os.environ,
        "GONGKAI_DATA_DIR": tmp,
        "GONGKAI_REDIS_URL": redis_url,
        "GONGKAI_WECOM_API_BASE": f"http://127.0.0.1:{fake_port}",
        "GONGKAI_RATE_LIMITS_ENABLED": "false",
        "GONGKAI_QUIET_HOURS": "off",
        "GONGKAI_SECRET_KEY": "bench",
        "GONGKAI_LOG_LEVEL": "WARNING",
        "GONGKAI_PORT": str(port),
    }
    if args.database_url:
        env["GONGKAI_DATABASE_URL"] = args.database_url
    procs: list[subprocess.Popen] = []
    try:
        (Path(tmp) / "dir.yaml").write_text(directory_yaml(n), encoding="utf-8")
        cli(env, "db", "upgrade")
        cli(env, "directory", "import", str(Path(tmp) / "dir.yaml"))
        token = cli(env, "token", "create", "--role", "publisher", "--name", "bench").strip()
        procs += [spawn(env, "serve"), spawn(env, "worker")]
        try:
            await asyncio.to_thread(wait_port, port, 120)
        except RuntimeError:
            print((Path(tmp) / "serve.log").read_text(errors="replace")[-3000:])
            raise
        api = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {token}"}
        results = []
        async with aiohttp.ClientSession() as http:
            await asyncio.sleep(2)  # the worker's imports
            for run in range(1, args.runs + 1):
                figures = await one_run(http, api, auth, state, n)
                results.append(figures)
                print(
                    f"run {run}: 201 in {figures['notice_201_ms']:.0f} ms "
                    f"(urgent {figures['urgent_201_ms']:.0f} ms); urgent first message at the "
                    f"robot {figures['urgent_first_message_ms']:.0f} ms after the POST; "
                    f"planning {figures['notice_planning_per_s']:,.0f} deliveries/s "
                    f"(urgent {figures['urgent_planning_per_s']:,.0f}/s, sending meanwhile)",
                    flush=True,
                )
        medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(f"medians of {len(results)} runs, {n:,} targets: " + json.dumps(medians, indent=1))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        await runner.cleanup()
        if isinstance(redis_handle, subprocess.Popen):
            redis_handle.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    asyncio.run(bench(ap.parse_args()))


if __name__ == "__main__":
    main()
