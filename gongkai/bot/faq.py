"""The keyword FAQ engine: plain functions over data, used by the CLI, WeChat and Telegram alike.

How a question is answered (`FaqIndex.ask`):
1. find the FAQ's words in it: literally (checked against jieba's segmentation), through
   synonyms (a synonym counts as its head word), or by toneless pinyin for homophone slips;
2. score each entry sharing a word: words weigh by rarity across the FAQ (IDF), generic words
   (投诉, 申请, 怎么 …) weigh a third; the score mixes how much of the question the entry
   explains with how much of the entry's two strongest words the question contains;
3. drop entries for regions that are not the asker's or an ancestor of it, and fold entries on
   the same topic into the most specific region's one (village over township over county over
   general). Without a region code every entry is eligible, and a general entry is preferred;
4. answer the best one, or offer a numbered choice when several are close, or fall back to
   the hotline when nothing scores above the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gongkai.bot.faq_format import FaqEntryData, FaqFormatError, dump_faq_yaml, parse_faq_yaml
from gongkai.bot.faq_match import WordMatcher
from gongkai.bot.faq_text import (
    GENERIC_WORDS,
    clean_text,
    normalize_question,
    parse_choice,
    segment,
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
GENERIC_FACTOR = 0.3
ONLY_GENERIC_FACTOR = 0.5
MAX_CHOICES = 3


@dataclass
class FaqAnswer:
    """What the bot says. `candidates` are (id, question, score), best first; for "choose" they
    are exactly the numbered options, in order, so a later reply can be resolved with `pick`."""

    kind: Literal["answer", "choose", "fallback"]
    id: str | None
    answer: str
    score: float
    candidates: list[tuple[str, str, float]] = field(default_factory=list)


def _canon(word: str) -> str:
    return "".join(clean_text(word).split())


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


class FaqIndex:
    """An FAQ prepared for answering; build once per FAQ version, then ask many times."""

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
        self.hotline = hotline
        self.threshold = threshold
        self.margin = margin
        self._by_id = {e.id: i for i, e in enumerate(self.entries)}
        self._parents = region_parents

        head_of: dict[str, str] = {}
        for head, variants in synonyms.items():
            h = _canon(head)
            for word in (head, *variants):
                if _canon(word):
                    head_of[_canon(word)] = h
        surface = dict(head_of)
        self._keys: list[frozenset[str]] = []
        for entry in self.entries:
            words = [_canon(k) for k in entry.keywords] or self._question_words(entry.question)
            keys = frozenset(head_of.get(w, w) for w in words if w)
            self._keys.append(keys)
            for w in words:
                if w:
                    surface.setdefault(w, head_of.get(w, w))

        df: dict[str, int] = {}
        for keys in self._keys:
            for k in keys:
                df[k] = df.get(k, 0) + 1
        n = max(len(self.entries), 1)
        self._weight = {
            k: math.log(1 + n / c) * (GENERIC_FACTOR if k in GENERIC_WORDS else 1.0)
            for k, c in df.items()
        }
        self._postings: dict[str, list[int]] = {}
        self._top2: list[float] = []
        for i, keys in enumerate(self._keys):
            for k in keys:
                self._postings.setdefault(k, []).append(i)
            strongest = sorted((self._weight[k] for k in keys), reverse=True)[:2]
            self._top2.append(sum(strongest) or 1.0)
        self._matcher = WordMatcher(surface)

    @staticmethod
    def _question_words(question: str) -> list[str]:
        """An entry written without keywords is matched on the words of its question."""
        words = [w for w in segment(_canon(question)) if len(w) > 1]
        return words or [_canon(question)]

    def get(self, entry_id: str) -> FaqEntryData | None:
        i = self._by_id.get(entry_id)
        return None if i is None else self.entries[i]

    def warm_up(self) -> None:
        """Load the segmenter now rather than on the first resident's question."""
        self._matcher.tokenizer()

    # --- regions --------------------------------------------------------------------------------

    def _chain(self, region_code: str) -> list[str]:
        """The asker's region and its ancestors, nearest first."""
        chain: list[str] = []
        code: str | None = region_code
        while code and code not in chain:
            chain.append(code)
            if self._parents is not None and code in self._parents:
                code = self._parents[code]
            else:
                code = _prefix_parent(code)
        return chain

    def _specificity(self, entry: FaqEntryData, depth: dict[str, int] | None) -> int | None:
        """Higher is nearer the asker; None means the entry is for somewhere else."""
        if not entry.regions:
            return 0
        if depth is None:
            return -1  # no region known: regional entries stay eligible but yield to general
        best = [depth[r] for r in entry.regions if r in depth]
        return max(best) if best else None

    # --- answering ------------------------------------------------------------------------------

    def score(self, text: str, region_code: str | None = None) -> list[tuple[int, float, int]]:
        """(entry index, score, specificity) for eligible entries, best first, topics folded."""
        found = self._matcher.find(text)
        if not found:
            return []
        weight = self._weight
        total = sum(weight.get(k, 0.0) * q for k, q in found.items()) or 1.0
        acc: dict[int, float] = {}
        distinctive: set[int] = set()
        for k, q in found.items():
            w = weight.get(k, 0.0) * q
            for i in self._postings.get(k, ()):
                acc[i] = acc.get(i, 0.0) + w
                if k not in GENERIC_WORDS:
                    distinctive.add(i)
        depth = None
        if region_code:
            chain = self._chain(region_code)
            depth = {code: len(chain) - n for n, code in enumerate(chain)}
        scored: list[tuple[int, float, int]] = []
        for i, m in acc.items():
            spec = self._specificity(self.entries[i], depth)
            if spec is None:
                continue
            s = 0.5 * (m / total) + 0.5 * min(1.0, m / self._top2[i])
            if i not in distinctive:
                s *= ONLY_GENERIC_FACTOR
            scored.append((i, round(s, 4), spec))
        scored.sort(key=lambda t: (-t[1], -t[2], t[0]))
        return self._fold_regions(scored)

    def _fold_regions(self, scored: list[tuple[int, float, int]]) -> list[tuple[int, float, int]]:
        """Entries on one topic (mostly the same words, close scores) collapse into the one for
        the most specific region, so a county's own 低保标准 replaces the general one."""
        kept: list[tuple[int, float, int]] = []
        for i, s, spec in scored[:50]:
            for n, (j, t, other) in enumerate(kept):
                a, b = self._keys[i], self._keys[j]
                if t - s <= self.margin and len(a & b) >= 0.6 * len(a | b):
                    if spec > other:
                        kept[n] = (i, t, spec)
                    break
            else:
                kept.append((i, s, spec))
        return kept

    def _text(self, entry: FaqEntryData, lang: str) -> str:
        return entry.answers.get(lang, entry.answer) if lang != "zh" else entry.answer

    def _label(self, i: int) -> str:
        entry = self.entries[i]
        return entry.question or "、".join(entry.keywords)

    def ask(
        self,
        text: str,
        region_code: str | None = None,
        lang: str = "zh",
        hotline: str | None = None,
    ) -> FaqAnswer:
        """Answer a resident's question as the bot would."""
        ranked = self.score(text, region_code)
        cands = [(self.entries[i].id, self._label(i), s) for i, s, _ in ranked[:MAX_CHOICES]]
        if not ranked or ranked[0][1] < self.threshold:
            fallback = FALLBACK_TEXT.format(hotline=hotline or self.hotline)
            return FaqAnswer("fallback", None, fallback, ranked[0][1] if ranked else 0.0, cands)
        best, top, _ = ranked[0]
        close = [c for c in cands if c[2] >= max(top - self.margin, self.threshold)]
        if len(close) > 1:
            lines = [f"{n}. {q}" for n, (_, q, _) in enumerate(close, 1)]
            body = "\n".join([CHOOSE_HEAD, *lines, CHOOSE_TAIL])
            return FaqAnswer("choose", None, body, top, close)
        entry = self.entries[best]
        return FaqAnswer("answer", entry.id, self._text(entry, lang), top, cands)

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
