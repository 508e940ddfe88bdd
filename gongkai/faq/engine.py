"""The keyword FAQ engine: plain functions over data, used by the CLI, WeChat and Telegram alike.

How a question is answered (`FaqIndex.ask`):
1. find the FAQ's words in it: literally (checked against jieba's segmentation), through
   synonyms (a synonym counts as its head word), or by toneless pinyin for homophone slips;
2. score each entry that has one of its distinctive words in the question: words weigh by
   rarity across the FAQ (IDF), generic words (投诉, 申请, 怎么 …) weigh a third and never
   select an entry on their own; the score mixes how much of the question the entry explains
   with how much of the entry's strongest word the question carries;
3. drop entries for regions that are not the asker's or an ancestor of it, and fold entries on
   the same topic into the most specific region's one (village over township over county over
   general). Without a region code every entry is eligible and a general entry is preferred:
   a resident who never told us where they live still gets the local answer when it is the
   only one;
4. answer the best one, or offer a numbered choice when several are close and none matched
   strictly more of the question's words than the others, or fall back to the hotline when
   nothing scores above the threshold.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, NamedTuple

from gongkai.faq.format import FaqEntryData, FaqFormatError, dump_faq_yaml, parse_faq_yaml
from gongkai.faq.match import segments
from gongkai.faq.tables import FaqTables, build_tables
from gongkai.faq.text import (
    GENERIC_WORDS,
    normalize_question,
    parse_choice,
)

__all__ = [
    "FALLBACK_TEXT",
    "FaqAnswer",
    "FaqEntryData",
    "FaqFormatError",
    "FaqIndex",
    "baseline_ask",
    "baseline_match",
    "dump_faq_yaml",
    "normalize_question",
    "parse_faq_yaml",
]

FALLBACK_TEXT = "抱歉，暂时没有找到相关答案。您可以拨打政务服务热线 {hotline}，或回复“转人工”。"
CHOOSE_HEAD = "您是不是想问："
CHOOSE_TAIL = "请回复数字。"
_CONSIDERED = 50  # entries kept after scoring; the rest cannot be offered anyway
MAX_CHOICES = 3
# Answers kept per index, by the question's words: after a notice hundreds of residents ask the
# same few questions within minutes, and the index is immutable (a new FAQ is a new index).
ANSWER_CACHE = 4096


@dataclass(frozen=True)
class FaqAnswer:
    """What the bot says. `candidates` are (id, question, score), best first; for "choose" they
    are exactly the numbered options, in order, so a later reply can be resolved with `pick`."""

    kind: Literal["answer", "choose", "fallback"]
    id: str | None
    answer: str
    score: float
    candidates: list[tuple[str, str, float]] = field(default_factory=list)


def baseline_match(entries: Iterable[FaqEntryData], text: str) -> FaqEntryData | None:
    """WeChat's built-in auto-reply: the first rule, in file order, with a keyword in the text."""
    for entry in entries:
        if any(k and k in text for k in entry.keywords):
            return entry
    return None


def baseline_ask(entries: Iterable[FaqEntryData], text: str) -> str | None:
    """The answer WeChat's built-in keyword auto-reply would give; the bar we must beat."""
    entry = baseline_match(entries, text)
    return entry.answer if entry else None


def _prefix_parent(code: str) -> str | None:
    """Parent by the national division code's structure: 12-digit village → 9-digit township →
    6-digit county → city (xxxx00) → province (xx0000)."""
    if len(code) == 12:
        return code[:9]
    if len(code) == 9:
        return code[:6]
    if len(code) == 6 and code.isdigit():
        if code[4:] != "00":
            return code[:4] + "00"
        if code[2:] != "0000":
            return code[:2] + "0000"
    return None


class Ranked(NamedTuple):
    index: int  # position in FaqIndex.entries
    score: float
    specificity: int  # higher = region nearer the asker; 0 general; -1 regional, asker unknown
    matched: frozenset[str]  # the entry's words found in the question


class FaqIndex:
    """An FAQ prepared for answering; build once per FAQ version, then ask many times.

    Construction only stores the data; the tables (and jieba's dictionary, ~1 s the first time
    in a process) are built on the first question or by `warm_up()`.
    """

    def __init__(
        self,
        entries: Iterable[FaqEntryData],
        synonyms: Mapping[str, Iterable[str]],
        region_parents: Mapping[str, str | None] | None = None,
        *,
        hotline: str = "12345",
        threshold: float = 0.5,
        margin: float = 0.1,
    ) -> None:
        self.entries = list(entries)
        self.synonyms = {head: list(words) for head, words in synonyms.items()}
        self.hotline = hotline
        self.threshold = threshold
        self.margin = margin
        self._by_id = {e.id: i for i, e in enumerate(self.entries)}
        self._regions = [tuple(e.regions) for e in self.entries]
        self._parents = region_parents
        self._tables: FaqTables | None = None
        self._lock = threading.Lock()
        self._answer = lru_cache(maxsize=ANSWER_CACHE)(self._answer_words)

    def warm_up(self) -> None:
        """Build the tables now rather than on the first resident's question."""
        self._prepared()

    def _prepared(self) -> FaqTables:
        with self._lock:
            if self._tables is None:
                self._tables = build_tables(self.entries, self.synonyms)
            return self._tables

    def get(self, entry_id: str) -> FaqEntryData | None:
        i = self._by_id.get(entry_id)
        return None if i is None else self.entries[i]

    # --- regions --------------------------------------------------------------------------------

    def _chain(self, region_code: str) -> list[str]:
        """The asker's region and its ancestors, nearest first: from `region_parents` where it
        knows the code, else from the division code's own structure (see `_prefix_parent`)."""
        chain: list[str] = []
        code: str | None = region_code
        while code and code not in chain:
            chain.append(code)
            if self._parents is not None and code in self._parents:
                code = self._parents[code]
            else:
                code = _prefix_parent(code)
        return chain

    @staticmethod
    def _specificity(regions: tuple[str, ...], depth: dict[str, int] | None) -> int | None:
        """Higher is nearer the asker; None means the entry is for somewhere else."""
        if not regions:
            return 0
        if depth is None:
            return -1  # no region known: regional entries stay eligible but yield to general
        best = [depth[r] for r in regions if r in depth]
        return max(best) if best else None

    # --- answering ------------------------------------------------------------------------------

    def score(self, text: str, region_code: str | None = None) -> list[Ranked]:
        """Eligible entries sharing a word with `text`, best first, region variants folded.

        Only entries with one of their distinctive words in the question are scored: a generic
        word alone (申请) would otherwise make thousands of entries candidates.
        """
        return self._score_words(segments(text), region_code)

    def _score_words(self, words: tuple[str, ...], region_code: str | None) -> list[Ranked]:
        tables = self._prepared()
        found = tables.matcher.find_in(words)
        if not found:
            return []
        weight, postings, generic_only = tables.weight, tables.postings, tables.generic_only
        mass = {k: weight.get(k, 0.0) * q for k, q in found.items()}
        total = sum(mass.values()) or 1.0
        generic = [k for k in found if k in GENERIC_WORDS]
        acc: dict[int, float] = {}
        for k, w in mass.items():
            for i, factor in tables.seeds.get(k, ()):
                acc[i] = acc.get(i, 0.0) + w * factor
        for k in generic:  # generic words only add to entries already selected
            w, plist = mass[k], postings.get(k, ())
            if len(plist) <= len(acc):
                for i, factor in plist:
                    if i in acc and i not in generic_only:
                        acc[i] += w * factor
            else:
                for i in acc:
                    factor = tables.words[i].get(k)
                    if factor and i not in generic_only:
                        acc[i] += w * factor
        depth = None
        if region_code:
            chain = self._chain(region_code)
            depth = {code: len(chain) - n for n, code in enumerate(chain)}
        scored: list[tuple[float, int, int]] = []
        strongest, regions = tables.strongest, self._regions
        for i, m in acc.items():
            spec = self._specificity(regions[i], depth) if regions[i] else 0
            if spec is not None:
                carried = m / strongest[i]
                s = 0.5 * (m / total) + 0.5 * (carried if carried < 1.0 else 1.0)
                scored.append((s, spec, -i))
        best = heapq.nlargest(_CONSIDERED, scored)
        ranked = [
            Ranked(-i, round(s, 4), spec, frozenset(k for k in found if k in tables.words[-i]))
            for s, spec, i in best
        ]
        return self._fold_regions(ranked)

    def _fold_regions(self, ranked: list[Ranked]) -> list[Ranked]:
        """Entries on one topic (mostly the same words, close scores) collapse into the one for
        the most specific region, so a county's own 低保标准 replaces the general one."""
        kept: list[Ranked] = []
        words = self._prepared().words
        for r in ranked:
            for n, k in enumerate(kept):
                a, b = words[r.index].keys(), words[k.index].keys()
                if k.score - r.score <= self.margin and len(a & b) >= 0.6 * len(a | b):
                    if r.specificity > k.specificity:
                        kept[n] = r._replace(score=k.score)
                    break
            else:
                kept.append(r)
        return kept

    def _options(self, ranked: list[Ranked]) -> list[Ranked]:
        """The entries worth offering: close to the best, and not merely a subset of another.

        If one close entry matched every word another matched and more (申请+低保 vs 低保), the
        resident said what distinguishes it, so it is the answer rather than a choice.
        """
        top = ranked[0].score
        close = [r for r in ranked if r.score >= max(top - self.margin, self.threshold)]
        return [r for r in close if not any(r.matched < o.matched for o in close)]

    def _text(self, entry: FaqEntryData, lang: str) -> str:
        return entry.answers.get(lang, entry.answer) if lang != "zh" else entry.answer

    def _candidate(self, r: Ranked) -> tuple[str, str, float]:
        entry = self.entries[r.index]
        return entry.id, entry.question or "、".join(entry.keywords), r.score

    def ask(
        self,
        text: str,
        region_code: str | None = None,
        lang: str = "zh",
        hotline: str | None = None,
    ) -> FaqAnswer:
        """Answer a resident's question as the bot would.

        The answer is shared by every question with the same words (see `ANSWER_CACHE`):
        callers read it and never change it."""
        return self._answer(segments(text), region_code, lang, hotline)

    def _answer_words(
        self, words: tuple[str, ...], region_code: str | None, lang: str, hotline: str | None
    ) -> FaqAnswer:
        ranked = self._score_words(words, region_code)
        if not ranked or ranked[0].score < self.threshold:
            cands = [self._candidate(r) for r in ranked[:MAX_CHOICES]]
            fallback = FALLBACK_TEXT.format(hotline=hotline or self.hotline)
            top = ranked[0].score if ranked else 0.0
            return FaqAnswer("fallback", None, fallback, top, cands)
        options = self._options(ranked)[:MAX_CHOICES]
        if len(options) > 1:
            cands = [self._candidate(r) for r in options]
            lines = [f"{n}. {q}" for n, (_, q, _) in enumerate(cands, 1)]
            body = "\n".join([CHOOSE_HEAD, *lines, CHOOSE_TAIL])
            return FaqAnswer("choose", None, body, ranked[0].score, cands)
        best = options[0]
        rest = [r for r in ranked if r is not best][: MAX_CHOICES - 1]
        entry = self.entries[best.index]
        cands = [self._candidate(r) for r in [best, *rest]]
        return FaqAnswer("answer", entry.id, self._text(entry, lang), best.score, cands)

    def pick(
        self, candidates: list[tuple[str, str, float]], reply_text: str, lang: str = "zh"
    ) -> FaqAnswer | None:
        """Resolve a reply to a "choose" message ("2", "２", "二", "第二个"); None if the reply is
        not a number in range, so the caller treats it as a new question."""
        n = parse_choice(reply_text)
        if n is None or not 1 <= n <= len(candidates):
            return None
        entry_id, question, s = candidates[n - 1]
        entry = self.get(entry_id)
        if entry is None:  # the FAQ was re-imported since the options were offered
            return None
        return FaqAnswer("answer", entry.id, self._text(entry, lang), s, [(entry_id, question, s)])
