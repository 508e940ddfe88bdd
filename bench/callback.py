"""The WeChat callback against WeRoBot, side by side, run by hand:

    python bench/callback.py [--messages 3000] [--runs 3] [--concurrency 16]

What a county would otherwise deploy is WeRoBot under gunicorn, answering from keyword
filters. This script installs WeRoBot 1.13.1 and gunicorn from PyPI into a throwaway
virtualenv (``/tmp/gongkai-bench-werobot``, reused when it is already there), writes a small
WeRoBot app that answers from the very FAQ file Gongkai imports (one filter per entry, the
entry's keywords as its pattern, in file order; the hotline text when none matches), and runs
both in safe (AES) mode with the same token, EncodingAESKey and AppID:

- Gongkai as a deployment runs it: ``gongkai db upgrade``, ``gongkai directory import``,
  ``gongkai faq import`` on a fresh data dir (SQLite), a Debian ``redis-server`` on a unix
  socket, then ``taskset -c 0 gongkai serve``;
- WeRoBot as ``taskset -c 0 gunicorn -w 1 werobot_app:app`` (sessions off: an FAQ needs none,
  and WeRoBot's SQLite session store would only slow it down);
- the stack's floor, ``taskset -c 0 python bench/callback_floor.py``: an aiohttp handler doing
  only the safe-mode work every reply needs (signature, AES both ways, defusedxml, wechatpy's
  message, Gongkai's FAQ answer, reply XML) and none of Gongkai's guarantees (no duplicate or
  replay guard, rate limit, resident or question log; no Redis, no database). It shows how
  much of the goal the stack itself leaves, and what Gongkai's guarantees cost per message.

One server at a time, on core 0; this process, the client, on core 1. It plays WeChat with
wechatpy's crypto: N distinct messages (distinct MsgIds, distinct texts where the dev questions
allow, each from a resident never seen before), 16 in flight, and afterwards checks that every
reply decrypts, is addressed to the resident who asked and carries the answer that side's own
engine gives for that text (Gongkai's `FaqIndex.ask`, WeRoBot's first matching filter). It
prints both rates, p50/p99 latency, server CPU per request and the ratios; with ``--runs 3``
the median of each. Gongkai's side is also checked to have stored every question once it is
stopped with SIGTERM, as a deployment stops it (its question log is written in the background).
``BENCH_SHOW=1`` prints each reply that is not the expected answer; ``BENCH_PROFILE=file``
runs Gongkai under cProfile and leaves its stats in ``file`` (slower: for where, not how fast).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV_FAQ = ROOT / "tests" / "data" / "faq_dev.yaml"
GONGKAI = Path(sys.executable).parent / "gongkai"
VENV = Path(tempfile.gettempdir()) / "gongkai-bench-werobot"
WEROBOT = "werobot==1.13.1"
SERVER_CPU, CLIENT_CPU = 0, 1
WARM_UP = 300  # messages sent (from other residents) before the timed ones, on each side
# The official test-vector credentials of WeChat's own samples.
TOKEN, AES_KEY, APP_ID = (
    "spamtest",
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "wx2c2769f8efd9abc2",
)
ACCOUNT, COUNTY = "bench", "150627"
PATH = f"/wechat/{ACCOUNT}"
DIRECTORY = f"""
accounts:
  wechat_mp:
    - {{name: {ACCOUNT}, app_id: {APP_ID}, app_secret: not-used, token: {TOKEN},
       encoding_aes_key: {AES_KEY}, region: "{COUNTY}"}}
regions:
  - code: "{COUNTY}"
    name: 伊金霍洛旗
    children:
      - code: "150627101"
        name: 札萨克镇
        children:
          - {{code: "150627101201", name: 门克庆嘎查}}
"""
PARENTS: dict[str, str | None] = {COUNTY: None, "150627101": COUNTY, "150627101201": "150627101"}
# How residents open and close a question: with the dev questions, distinct texts.
OPENERS = (
    "",
    "请问",
    "你好，",
    "您好，",
    "麻烦问一下，",
    "问下",
    "打扰一下，",
    "同志，",
    "咨询一下",
)
ENDINGS = ("", "？", "。", "！")

WEROBOT_APP = '''"""WeRoBot answering from the same FAQ file, with its own keyword filters."""
import re

import yaml
from werobot import WeRoBot

FAQ = {faq!r}
FALLBACK = {fallback!r}

robot = WeRoBot(token={token!r}, encoding_aes_key={aes!r}, app_id={app_id!r})
robot.config["SESSION_STORAGE"] = False  # an FAQ needs no session
with open(FAQ, encoding="utf-8") as f:
    entries = yaml.safe_load(f)["entries"]


def answering(text):
    return lambda message: text


for entry in entries:  # file order: the first entry with a keyword in the text answers
    words = "|".join(re.escape(str(k)) for k in entry["keywords"] if k)
    robot.filter(re.compile(".*?(?:" + words + ")", re.S))(answering(entry["answer"]))


@robot.text
def fallback(message):
    return FALLBACK


app = robot.wsgi
'''


# --- set-up -----------------------------------------------------------------------------------


def werobot_venv() -> Path:
    """The throwaway virtualenv with WeRoBot and gunicorn, made once and reused."""
    python = VENV / "bin" / "python"
    probe = "import werobot, gunicorn, yaml, cryptography; assert werobot.__version__ == '1.13.1'"
    if (
        python.exists()
        and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    ):
        return VENV
    print(f"installing {WEROBOT} and gunicorn into {VENV} …", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    venv.create(VENV, with_pip=True)
    subprocess.run(
        [python, "-m", "pip", "install", "-q", WEROBOT, "cryptography", "gunicorn", "pyyaml"],
        check=True,
    )
    return VENV


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Bench:
    tmp: Path
    faq: Path
    env: dict[str, str]
    redis: subprocess.Popen[bytes] | None = None


def prepare(tmp: Path) -> Bench:
    """A data dir as a deployment has it: migrated, the account and the FAQ imported."""
    faq = yaml.safe_load(DEV_FAQ.read_text("utf-8"))
    faq.pop("questions", None)
    faq_file = tmp / "faq.yaml"
    faq_file.write_text(yaml.safe_dump(faq, allow_unicode=True, sort_keys=False), "utf-8")
    (tmp / "directory.yaml").write_text(DIRECTORY, "utf-8")
    sock = tmp / "redis.sock"
    redis = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    env = {
        **os.environ,
        "GONGKAI_DATA_DIR": str(tmp / "data"),
        "GONGKAI_REDIS_URL": f"unix://{sock}",
        "GONGKAI_SECRET_KEY": "bench-secret",
        "GONGKAI_PUBLIC_URL": "http://bench.test",
        "GONGKAI_QUIET_HOURS": "off",
    }
    bench = Bench(tmp, faq_file, env, redis)
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    for args in (
        ["db", "upgrade"],
        ["directory", "import", str(tmp / "directory.yaml")],
        ["faq", "import", str(faq_file)],
    ):
        subprocess.run([GONGKAI, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return bench


# --- the two servers --------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its children (gunicorn's worker)."""
        total, todo = 0.0, [self.process.pid]
        while todo:
            pid = todo.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            todo.extend(int(c) for c in children)
        return total

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_gongkai(bench: Bench) -> Server:
    port = free_port()
    env = {**bench.env, "GONGKAI_PORT": str(port)}
    cmd = ["taskset", "-c", str(SERVER_CPU), str(GONGKAI), "serve"]
    if profile := os.environ.get("BENCH_PROFILE"):  # cProfile's stats, written on SIGTERM
        cmd[3:4] = [sys.executable, "-m", "cProfile", "-o", profile, str(GONGKAI)]
    return _started(Server("Gongkai", subprocess.Popen(cmd, env=env, cwd=bench.tmp), port))


def start_floor(bench: Bench) -> Server:
    """The stack's floor (``bench/callback_floor.py``): the same FAQ, none of the guarantees."""
    port = free_port()
    app = ROOT / "bench" / "callback_floor.py"
    cmd = ["taskset", "-c", str(SERVER_CPU), sys.executable, str(app),
           str(port), str(bench.faq), TOKEN, AES_KEY, APP_ID]  # fmt: skip
    return _started(Server("Floor", subprocess.Popen(cmd, cwd=bench.tmp), port))


def start_werobot(bench: Bench) -> Server:
    from gongkai.faq.engine import FALLBACK_TEXT

    app = bench.tmp / "werobot_app.py"
    app.write_text(
        WEROBOT_APP.format(
            faq=str(bench.faq),
            fallback=FALLBACK_TEXT.format(hotline="12345"),
            token=TOKEN,
            aes=AES_KEY,
            app_id=APP_ID,
        ),
        "utf-8",
    )
    port = free_port()
    cmd = ["taskset", "-c", str(SERVER_CPU), str(VENV / "bin" / "gunicorn"), "-w", "1",
           "-b", f"127.0.0.1:{port}", "--chdir", str(bench.tmp), "--log-level", "warning",
           "werobot_app:app"]  # fmt: skip
    return _started(Server("WeRoBot", subprocess.Popen(cmd, cwd=bench.tmp), port))


def _started(server: Server) -> Server:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not start within 60 s")


# --- playing WeChat ---------------------------------------------------------------------------


@dataclass
class Push:
    openid: str
    text: str
    query: dict[str, str]
    body: bytes


def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def pushes(texts: list[str], prefix: str, first_id: int) -> list[Push]:
    """Signed, encrypted safe-mode pushes, one per text, each from a new resident."""
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    now = str(int(time.time()))
    out = []
    for n, text in enumerate(texts):
        openid = f"o{prefix}{n:07d}"
        xml = (
            f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
            f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{first_id + n}</MsgId></xml>"
        )
        nonce = str(random.randrange(10**9))
        sealed = ElementTree.fromstring(crypto.encrypt_message(xml, nonce, now))
        encrypt = sealed.findtext("Encrypt") or ""
        query = {
            "signature": _sign(TOKEN, now, nonce),
            "timestamp": now,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": sealed.findtext("MsgSignature") or "",
        }
        body = (
            "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
        out.append(Push(openid, text, query, body.encode()))
    return out


async def _fire(url: str, batch: list[Push], concurrency: int) -> tuple[float, list[Any]]:
    """Send every push with ``concurrency`` in flight; (seconds, [(latency, status, body)])."""
    import aiohttp

    results: list[Any] = [None] * len(batch)
    queue = iter(enumerate(batch))

    async def lane(http: aiohttp.ClientSession) -> None:
        for n, push in queue:
            t0 = time.perf_counter()
            async with http.post(url, params=push.query, data=push.body) as resp:
                body = await resp.read()
            results[n] = (time.perf_counter() - t0, resp.status, body)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(lane(http) for _ in range(concurrency)))
        return time.perf_counter() - t0, results


def check(push: Push, status: int, body: bytes, expected: str | None) -> str | None:
    """None when the reply decrypts to a text reply to this resident with the expected answer;
    else what is wrong with it."""
    from wechatpy.crypto import WeChatCrypto

    if status != 200:
        return f"HTTP {status}"
    try:
        outer = ElementTree.fromstring(body)
        plain = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
            body.decode(),
            outer.findtext("MsgSignature"),
            outer.findtext("TimeStamp"),
            outer.findtext("Nonce"),
        )
        reply = ElementTree.fromstring(plain)
    except Exception as exc:  # anything that does not decrypt is a failed reply
        return f"does not decrypt ({type(exc).__name__})"
    if reply.findtext("ToUserName") != push.openid:
        return "addressed to someone else"
    if expected is not None and reply.findtext("Content") != expected:
        if os.environ.get("BENCH_SHOW"):
            print(f"    {push.text!r}: {reply.findtext('Content')!r} ≠ {expected!r}")
        return "not the expected answer"
    return None


# --- what each side should answer -------------------------------------------------------------


def questions(n: int, seed: int) -> list[str]:
    """``n`` resident questions, distinct as long as the dev questions and their variants last."""
    raw = yaml.safe_load(DEV_FAQ.read_text("utf-8"))["questions"]
    dev = sorted({str(q["q"]) for q in raw})
    variants = [o + q + e for q in dev for o in OPENERS for e in ENDINGS]
    rng = random.Random(seed)
    rng.shuffle(variants)
    return [variants[i % len(variants)] for i in range(n)]


class Expected:
    """Each side's own answer to a text: what its reply must carry."""

    def __init__(self, faq: Path) -> None:
        from gongkai.faq.engine import FALLBACK_TEXT, FaqIndex, parse_faq_yaml

        entries, synonyms = parse_faq_yaml(faq.read_text("utf-8"))
        self.entries = entries  # WeRoBot's filters: in file order
        # Gongkai's index is built from the database, entries by id (ties are offered in order)
        self.index = FaqIndex(sorted(entries, key=lambda e: e.id), synonyms, PARENTS)
        self.fallback = FALLBACK_TEXT.format(hotline="12345")

    def gongkai(self, text: str) -> str | None:
        """Gongkai's answer to a question; for a command or an empty text, None (any reply)."""
        from gongkai.bots.phrases import say
        from gongkai.bots.wechat_messages import fit
        from gongkai.faq.engine import normalize_question

        if not normalize_question(text.strip()):
            return say("zh", "help")
        if not self.is_question(text):
            return None
        return fit(self.index.ask(text.strip(), COUNTY, "zh", hotline="12345").answer)

    def werobot(self, text: str) -> str:
        from gongkai.faq.engine import baseline_ask

        return baseline_ask(self.entries, text) or self.fallback

    def is_question(self, text: str) -> bool:
        """Whether Gongkai logs the text as a question (not a command, not empty)."""
        from gongkai.bots.conversation import MAX_CHARS, parse_command
        from gongkai.faq.engine import normalize_question

        return (
            len(text.strip()) <= MAX_CHARS
            and bool(normalize_question(text.strip()))
            and parse_command(text) is None
        )


# --- one side, one run --------------------------------------------------------------------------


@dataclass
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # server CPU per request
    failures: dict[str, int] | None = None  # None: a median, not one run
    stored: str = ""


def _pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(
    side: str, bench: Bench, expected: Expected, n: int, concurrency: int, run: int
) -> Figures:
    texts = questions(n, seed=run)
    answer = expected.werobot if side == "WeRoBot" else expected.gongkai  # the floor: our FAQ
    stored_before = _questions_stored(bench) if side == "Gongkai" else 0
    starts = {"Gongkai": start_gongkai, "WeRoBot": start_werobot, "Floor": start_floor}
    server = starts[side](bench)
    tag = f"{side[0]}{run}"
    try:
        warm = pushes(questions(WARM_UP, seed=1000 + run), f"{tag}w", 10**9 * (2 * run + 1))
        # One question alone first: Gongkai loads jieba's dictionary and builds its FAQ index
        # on the first one (a second or two), which a burst would otherwise wait for.
        asyncio.run(_fire(server.url, warm[:1], 1))
        asyncio.run(_fire(server.url, warm[1:], concurrency))
        timed = pushes(texts, f"{tag}t", 10**9 * (2 * run + 2))
        cpu0 = server.cpu_seconds()
        elapsed, results = asyncio.run(_fire(server.url, timed, concurrency))
        cpu = server.cpu_seconds() - cpu0
    finally:
        code = server.stop()
    failures: dict[str, int] = {}
    for push, (_, status, body) in zip(timed, results, strict=True):
        wrong = check(push, status, body, answer(push.text))
        if wrong is not None:
            failures[wrong] = failures.get(wrong, 0) + 1
    latencies = sorted(r[0] * 1000 for r in results)
    figures = Figures(
        n / elapsed, _pct(latencies, 50), _pct(latencies, 99), cpu / n * 1000, failures
    )
    if side == "Gongkai":
        wanted = sum(expected.is_question(t) for t in [*(p.text for p in warm), *texts])
        got = _questions_stored(bench) - stored_before
        figures.stored = f"{got} of {wanted} questions stored after SIGTERM (exit {code})"
    return figures


def _questions_stored(bench: Bench) -> int:
    db = Path(bench.env["GONGKAI_DATA_DIR"]) / "gongkai.sqlite3"
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM question").fetchone()[0])


def _line(side: str, f: Figures) -> str:
    bad = sum((f.failures or {}).values())
    verdict = (
        ""
        if f.failures is None
        else (
            "every reply decrypts with the expected answer"
            if not bad
            else f"{bad} bad: {f.failures}"
        )
    )
    return (
        f"  {side:8} {f.rps:7.0f} req/s  p50 {f.p50_ms:6.1f} ms  p99 {f.p99_ms:6.1f} ms  "
        f"CPU {f.cpu_ms:5.2f} ms/req  {verdict}" + (f"; {f.stored}" if f.stored else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gongkai's WeChat callback against WeRoBot")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--only", choices=("gongkai", "werobot", "floor"), help="one side only")
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2 and os.cpu_count() and os.cpu_count() < 2:  # type: ignore[operator]
        print("needs two cores: the server on one, the client on the other")
        return 1
    if shutil.which("redis-server") is None or shutil.which("taskset") is None:
        print("needs redis-server and taskset on PATH")
        return 1
    werobot_venv()
    os.sched_setaffinity(0, {CLIENT_CPU})
    sides = ["Gongkai", "WeRoBot", "Floor"]
    if args.only:
        sides = [s for s in sides if s.lower() == args.only]
    results: dict[str, list[Figures]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="gongkai-callback-") as tmp:
        bench = prepare(Path(tmp))
        try:
            expected = Expected(bench.faq)
            for run in range(1, args.runs + 1):
                print(f"run {run}: {args.messages} messages, {args.concurrency} in flight, "
                      f"servers on core {SERVER_CPU}, client on core {CLIENT_CPU}")  # fmt: skip
                order = sides if run % 2 else sides[::-1]  # neither always goes first
                for side in order:
                    figures = measure(side, bench, expected, args.messages, args.concurrency, run)
                    results[side].append(figures)
                    print(_line(side, figures), flush=True)
        finally:
            if bench.redis is not None:
                bench.redis.terminate()
                bench.redis.wait(10)
    med = {
        s: Figures(
            *(
                statistics.median(getattr(f, k) for f in fs)
                for k in ("rps", "p50_ms", "p99_ms", "cpu_ms")
            )
        )
        for s, fs in results.items()
    }
    if args.runs > 1:
        print(f"median of {args.runs} runs:")
        for side, f in med.items():
            print(_line(side, f))
    if "WeRoBot" in med:
        w = med["WeRoBot"]
        for side in ("Gongkai", "Floor"):
            if side not in med:
                continue
            f = med[side]
            rate, tail = f.rps / w.rps, f.p99_ms / w.p99_ms
            print(
                f"{side} / WeRoBot: rate ×{rate:.2f} (goal ≥ 2), p99 ×{tail:.2f} (goal ≤ 0.5), "
                f"p50 ×{f.p50_ms / w.p50_ms:.2f}: "
                + ("met" if rate >= 2 and tail <= 0.5 else "not met")
            )
    if "Gongkai" in med and "Floor" in med:
        g, f = med["Gongkai"], med["Floor"]
        print(
            f"Gongkai / floor: rate ×{g.rps / f.rps:.2f}, CPU per request "
            f"{g.cpu_ms:.2f} vs {f.cpu_ms:.2f} ms: the guarantees cost "
            f"{g.cpu_ms - f.cpu_ms:.2f} ms a message"
        )
    bad = sum(sum((f.failures or {}).values()) for fs in results.values() for f in fs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
