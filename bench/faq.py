"""FAQ engine benchmark, run by hand: `python bench/faq.py [--entries 5000] [--questions 5000]`.

Builds a synthetic FAQ of N entries from tests/data/faq_dev.yaml: each dev entry is copied with
an invented place name added to its keywords and question, and a share of the copies is given
to invented townships and villages, so postings lists are long (every 低保 entry shares 低保)
and region filtering does work. Questions are the dev questions, some with a place name or a
homophone slip mixed in. Prints build time, first-question time and p50/p99 of `ask()`.

The WeChat callback end to end, against WeRoBot, is bench/callback.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gongkai.faq.engine import FaqEntryData, FaqIndex, parse_faq_yaml  # noqa: E402
from gongkai.faq.text import preload  # noqa: E402

DEV_FAQ = ROOT / "tests" / "data" / "faq_dev.yaml"
COUNTY = "150627"
# Characters for invented place names (嘎查/村 names are usually two or three such characters).
_NAME_CHARS = "乌兰巴图哈达苏木敖包塔拉宝日勒格其那仁毛都阿拉坦锡林朝鲁希格沙尔布和"


def _place(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = "".join(rng.choice(_NAME_CHARS) for _ in range(rng.choice((2, 3)))) + "嘎查"
        if name not in taken:
            taken.add(name)
            return name


def synthetic_faq(
    n_entries: int, seed: int = 7
) -> tuple[list[FaqEntryData], dict[str, list[str]], dict[str, str | None], list[str]]:
    """(entries, synonyms, region_parents, village codes) for an FAQ of `n_entries` entries."""
    rng = random.Random(seed)
    base, synonyms = parse_faq_yaml(DEV_FAQ.read_text(encoding="utf-8"))
    townships = [f"{COUNTY}{n:03d}" for n in range(101, 121)]
    villages = [f"{t}{n:03d}" for t in townships for n in range(201, 226)]
    parents: dict[str, str | None] = {COUNTY: None}
    parents.update(dict.fromkeys(townships, COUNTY))
    parents.update({v: v[:9] for v in villages})
    entries: list[FaqEntryData] = list(base)
    taken: set[str] = set()
    copy = 0
    while len(entries) < n_entries:
        copy += 1
        for e in base:
            if len(entries) >= n_entries:
                break
            place = _place(rng, taken)
            roll = rng.random()
            regions = (
                [rng.choice(villages)]
                if roll < 0.3
                else [rng.choice(townships)]
                if roll < 0.5
                else list(e.regions)
            )
            entries.append(
                FaqEntryData(
                    id=f"{e.id}-{copy}",
                    question=f"{place}{e.question}",
                    keywords=[*e.keywords, place],
                    answer=f"（{place}）{e.answer}",
                    answers=dict(e.answers),
                    domain=e.domain,
                    regions=regions,
                )
            )
    places = sorted(taken)
    return entries, synonyms, parents, villages + places


def _questions(n: int, places: list[str], seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    raw = yaml.safe_load(DEV_FAQ.read_text(encoding="utf-8"))["questions"]
    dev = [str(q["q"]) for q in raw]
    names = [p for p in places if p.endswith("嘎查")]
    out: list[str] = []
    while len(out) < n:
        q = rng.choice(dev)
        if rng.random() < 0.3:
            q = rng.choice(names) + q  # "乌兰嘎查低保咋申请"
        out.append(q)
    return out


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_engine(n_entries: int = 5000, n_questions: int = 5000) -> dict[str, float]:
    """Build and query a synthetic FAQ; returns the timings (seconds / milliseconds)."""
    entries, synonyms, parents, codes = synthetic_faq(n_entries)
    villages = [c for c in codes if c.isdigit()]
    questions = _questions(n_questions, codes)
    rng = random.Random(3)

    t0 = time.perf_counter()
    preload()  # jieba's own dictionary, once per process
    t_jieba = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = FaqIndex(entries, synonyms, parents)
    t_construct = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.warm_up()  # segmenter, pinyin and weight tables
    t_build = time.perf_counter() - t0

    kinds: dict[str, int] = {}
    samples: list[float] = []
    gc.collect()
    gc.freeze()  # as the server does once its FAQ index is built (gongkai/faq/store.py)
    for q in questions:
        region = rng.choice(villages) if rng.random() < 0.7 else None
        t0 = time.perf_counter()
        answer = index.ask(q, region_code=region)
        samples.append((time.perf_counter() - t0) * 1000)
        kinds[answer.kind] = kinds.get(answer.kind, 0) + 1
    return {
        "entries": float(len(entries)),
        "questions": float(len(questions)),
        "jieba_s": t_jieba,
        "construct_s": t_construct,
        "build_s": t_build,
        "p50_ms": statistics.median(samples),
        "p90_ms": _pct(samples, 90),
        "p99_ms": _pct(samples, 99),
        "max_ms": max(samples),
        **{f"kind_{k}": float(v) for k, v in sorted(kinds.items())},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--questions", type=int, default=5000)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    r = bench_engine(args.entries, args.questions)
    print(f"FAQ engine: {int(r['entries'])} entries, {int(r['questions'])} questions")
    print(
        f"  jieba dictionary {r['jieba_s']:.2f} s (once per process); "
        f"FaqIndex() {r['construct_s'] * 1000:.1f} ms; tables {r['build_s']:.2f} s"
    )
    print(
        f"  ask(): p50 {r['p50_ms']:.3f} ms  p90 {r['p90_ms']:.3f} ms  "
        f"p99 {r['p99_ms']:.3f} ms  max {r['max_ms']:.2f} ms"
    )
    kinds = {k[5:]: int(v) for k, v in r.items() if k.startswith("kind_")}
    print(f"  outcomes: {kinds}")


if __name__ == "__main__":
    main()
