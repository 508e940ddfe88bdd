"""Finding an FAQ's words in a resident's question: literally, through synonyms, or by sound.

A match is (canonical word → quality): 1.0 for the word or a synonym as written, less for a
homophone slip (低宝 for 低保) because sound alone is weaker evidence than spelling.
"""

from __future__ import annotations

from collections import defaultdict

import jieba
from pypinyin import lazy_pinyin

from gongkai.bot.faq_text import base_frequency, fuzzy_syllable, match_form, readings

__all__ = ["KEYWORD_FREQ", "WordMatcher"]

PINYIN_QUALITY = 0.9
FUZZY_QUALITY = 0.75
KEYWORD_FREQ = 50_000  # high enough that jieba keeps an FAQ keyword in one piece


def _is_han(word: str) -> bool:
    return all(readings(ch) for ch in word)


class WordMatcher:
    """Knows every surface form of every keyword and finds them in a question."""

    def __init__(self, surface: dict[str, str], tokenizer: jieba.Tokenizer) -> None:
        # surface form (cleaned) → canonical head word
        self.surface = surface
        self.max_len = max((len(w) for w in surface), default=0)
        self._exact: dict[tuple[int, str], list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
        self._fuzzy: dict[tuple[int, str], list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
        self.pinyin_lengths: set[int] = set()
        for word in surface:
            if len(word) < 2 or not _is_han(word):
                continue
            syls = tuple(lazy_pinyin(word))
            fuzzy = tuple(fuzzy_syllable(s) for s in syls)
            self._exact[(len(word), syls[0])].append((word, syls))
            self._fuzzy[(len(word), fuzzy[0])].append((word, fuzzy))
            self.pinyin_lengths.add(len(word))
        self.tokenizer = tokenizer

    def find(self, text: str) -> dict[str, float]:
        """Canonical words present in `text`, each with the best quality it was found with."""
        found: dict[str, float] = {}
        tok = self.tokenizer
        for seg in match_form(text).split():
            covered = self._literal(seg, tok, found)
            self._by_sound(seg, covered, found)
        return found

    def _literal(self, seg: str, tok: jieba.Tokenizer, found: dict[str, float]) -> list[bool]:
        """Substring matches that agree with word segmentation, longest first.

        A keyword found inside one segmented word (低保 in 低保户) or spanning whole words counts;
        one that straddles a word boundary (户口 in 住户|口粮) is a coincidence of characters.
        A match inside a longer one (过期 in 过期食品) is dropped: the longer word is what was said.
        """
        token_of: list[int] = []
        starts: list[int] = []
        pos = 0
        for n, word in enumerate(tok.lcut(seg)):
            starts.append(pos)
            token_of.extend([n] * len(word))
            pos += len(word)
        boundaries = {*starts, pos}
        spans: list[tuple[int, int, str]] = []
        for i in range(len(seg)):
            for j in range(i + 1, min(len(seg), i + self.max_len) + 1):
                head = self.surface.get(seg[i:j])
                if head is None:
                    continue
                if token_of[i] == token_of[j - 1] or (i in boundaries and j in boundaries):
                    spans.append((i, j, head))
        covered = [False] * len(seg)
        for i, j, head in spans:
            if any(a <= i and j <= b and (a, b) != (i, j) for a, b, _ in spans):
                continue
            found[head] = 1.0
            for k in range(i, j):
                covered[k] = True
        return covered

    def _by_sound(self, seg: str, covered: list[bool], found: dict[str, float]) -> None:
        """Homophone slips from pinyin input: 低宝 → 低保, 身分证 → 身份证.

        An n-gram that is itself a common word (一包 sounds like 医保) is taken as meant, so a
        sound match needs the n-gram to be rarer than the keyword in general Chinese text.
        """
        reads = [readings(ch) for ch in seg]
        for length in self.pinyin_lengths:
            for i in range(len(seg) - length + 1):
                if all(covered[i : i + length]) or not all(reads[i : i + length]):
                    continue
                gram = seg[i : i + length]
                hit = self._sound_hit(gram, reads[i : i + length])
                if hit is None:
                    continue
                word, quality = hit
                head = self.surface[word]
                if found.get(head, 0.0) < quality:
                    found[head] = quality

    def _sound_hit(self, gram: str, reads: list[tuple[str, ...]]) -> tuple[str, float] | None:
        length = len(gram)
        for table, quality, norm in (
            (self._exact, PINYIN_QUALITY, None),
            (self._fuzzy, FUZZY_QUALITY, fuzzy_syllable),
        ):
            opts = reads if norm is None else [{norm(r) for r in rs} for rs in reads]
            for first in opts[0]:
                for word, syls in table.get((length, first), ()):
                    if word == gram or not all(syls[k] in opts[k] for k in range(1, length)):
                        continue
                    if length <= 2 and not any(a == b for a, b in zip(word, gram, strict=True)):
                        continue  # two-character whole-word swaps are other words, not slips
                    if self._plausible_slip(gram, word):
                        return word, quality
        return None

    @staticmethod
    def _plausible_slip(gram: str, word: str) -> bool:
        gram_freq = base_frequency(gram)
        return gram_freq == 0 or gram_freq * 2 < base_frequency(word)
