"""What an FAQ index precomputes: each entry's words and how much each word counts.

Words come from the entry's keywords (full weight) and, at half weight, from the words of its
question: editors write the question carefully but list only a few keywords, and residents
often use the question's words (救助, 公开, 孩子) rather than the keywords.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gongkai.faq.format import FaqEntryData
from gongkai.faq.match import KEYWORD_FREQ, WordMatcher
from gongkai.faq.text import GENERIC_WORDS, match_form, new_tokenizer

__all__ = ["FaqTables", "build_tables", "canon"]

GENERIC_FACTOR = 0.3
QUESTION_WORD_FACTOR = 0.5

# Question words that say nothing about the topic (the generic list covers the rest).
_FUNCTION_WORDS = frozenset(
    "怎么样 怎样 哪些 哪个 哪儿 什么样 有些 这个 那个 我们 你们 他们 还是 或者 以及 是否 谁能"
    " 能够 应该 一下 一般 还有 已经 是不是 为什么 可不可以".split()
)


def canon(word: str) -> str:
    """The form a word is stored and matched in: cleaned, no spaces, ages in digits."""
    return "".join(match_form(word).split())


@dataclass
class FaqTables:
    matcher: WordMatcher
    weight: dict[str, float]  # canonical word → IDF-like weight (generic words damped)
    postings: dict[str, list[tuple[int, float]]]  # word → (entry index, factor)
    words: list[dict[str, float]]  # per entry: canonical word → factor
    strongest: list[float]  # per entry: its largest weight × factor
    # Entries whose every word is generic ("投诉电话是多少？"): a generic word may select them.
    # Every other entry needs one of its distinctive words in the question to be considered.
    generic_only: set[int]
    seeds: dict[str, list[tuple[int, float]]]  # word → entries it may select (see above)


def build_tables(entries: list[FaqEntryData], synonyms: Mapping[str, Iterable[str]]) -> FaqTables:
    head_of: dict[str, str] = {}
    for head, variants in synonyms.items():
        h = canon(head)
        for word in (head, *variants):
            if canon(word):
                head_of[canon(word)] = h
    surface: dict[str, str] = dict(head_of)
    keyword_lists = [[w for w in (canon(k) for k in e.keywords) if w] for e in entries]
    for words in keyword_lists:
        for w in words:
            surface.setdefault(w, head_of.get(w, w))
    tokenizer = new_tokenizer(dict.fromkeys(surface, KEYWORD_FREQ))

    per_entry: list[dict[str, float]] = []
    for entry, keywords in zip(entries, keyword_lists, strict=True):
        factors: dict[str, float] = {}
        q_factor = QUESTION_WORD_FACTOR if keywords else 1.0
        for w in tokenizer.lcut(canon(entry.question), HMM=False):
            if len(w) > 1 and w not in _FUNCTION_WORDS:
                head = head_of.get(w, w)
                factors[head] = q_factor
                surface.setdefault(w, head)
        for w in keywords:
            factors[head_of.get(w, w)] = 1.0
        if not factors and canon(entry.question):  # "在吗？": nothing but the question itself
            whole = canon(entry.question)
            factors[head_of.get(whole, whole)] = 1.0
            surface.setdefault(whole, head_of.get(whole, whole))
        per_entry.append(factors)

    df: dict[str, int] = {}
    for factors in per_entry:
        for k in factors:
            df[k] = df.get(k, 0) + 1
    n = max(len(entries), 1)
    weight = {
        k: math.log(1 + n / c) * (GENERIC_FACTOR if k in GENERIC_WORDS else 1.0)
        for k, c in df.items()
    }
    postings: dict[str, list[tuple[int, float]]] = {}
    strongest: list[float] = []
    for i, factors in enumerate(per_entry):
        for k, f in factors.items():
            postings.setdefault(k, []).append((i, f))
        strongest.append(max((weight[k] * f for k, f in factors.items()), default=1.0))
    generic_only = {i for i, f in enumerate(per_entry) if f and all(k in GENERIC_WORDS for k in f)}
    seeds = {
        k: [p for p in plist if p[0] in generic_only] if k in GENERIC_WORDS else plist
        for k, plist in postings.items()
    }
    matcher = WordMatcher(surface, tokenizer)
    return FaqTables(matcher, weight, postings, per_entry, strongest, generic_only, seeds)
