"""Finding an FAQ's words in a resident's question: literally, through synonyms, or by sound.

A match is (canonical word → quality): 1.0 for the word or a synonym as written, less for a
homophone slip (低宝 for 低保) because sound alone is weaker evidence than spelling.
"""

from __future__ import annotations

from itertools import islice, product
from typing import TYPE_CHECKING

from gongkai.faq.text import base_frequency, fuzzy_syllable, match_form, readings

if TYPE_CHECKING:
    import jieba

__all__ = ["KEYWORD_FREQ", "WordMatcher"]

PINYIN_QUALITY = 0.9
FUZZY_QUALITY = 0.75
KEYWORD_FREQ = 50_000  # high enough that jieba keeps an FAQ keyword in one piece
_MAX_SPELLINGS = 8  # polyphone combinations indexed / tried per word


def _spellings(reads: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Every way to read a run of characters (bounded: 行长 has four, most words one)."""
    return list(islice(product(*reads), _MAX_SPELLINGS))


class WordMatcher:
    """Knows every surface form of every keyword and finds them in a question."""

    def __init__(self, surface: dict[str, str], tokenizer: jieba.Tokenizer) -> None:
        self.surface = surface  # surface form (match_form, no spaces) → canonical head word
        self.tokenizer = tokenizer
        self.max_len = max((len(w) for w in surface), default=0)
        # toneless syllables → words that sound like that; fuzzy: with zh/z, n/l … merged
        self._exact: dict[tuple[str, ...], list[str]] = {}
        self._fuzzy: dict[tuple[str, ...], list[str]] = {}
        self.pinyin_lengths: set[int] = set()
        for word in surface:
            reads = [readings(ch) for ch in word]
            if len(word) < 2 or not all(reads):
                continue
            for syls in _spellings(reads):
                self._exact.setdefault(syls, []).append(word)
                fuzzy = tuple(fuzzy_syllable(s) for s in syls)
                self._fuzzy.setdefault(fuzzy, []).append(word)
            self.pinyin_lengths.add(len(word))

    def find(self, text: str) -> dict[str, float]:
        """Canonical words present in `text`, each with the best quality it was found with."""
        found: dict[str, float] = {}
        for seg in match_form(text).split():
            covered = self._literal(seg, found)
            if self.pinyin_lengths:
                self._by_sound(seg, covered, found)
        return found

    def _literal(self, seg: str, found: dict[str, float]) -> list[bool]:
        """Substring matches that agree with word segmentation, longest first.

        A keyword found inside one segmented word (低保 in 低保户) or spanning whole words counts;
        one that straddles a word boundary (户口 in 住户|口粮) is a coincidence of characters.
        A match inside a longer one (过期 in 过期食品) is dropped: the longer word is what was said.
        """
        spans: list[tuple[int, int, str]] = []
        for i in range(len(seg)):
            for j in range(i + 1, min(len(seg), i + self.max_len) + 1):
                head = self.surface.get(seg[i:j])
                if head is not None:
                    spans.append((i, j, head))
        covered = [False] * len(seg)
        if not spans:
            return covered
        token_of: list[int] = []
        boundaries = {0}
        for n, word in enumerate(self.tokenizer.lcut(seg, HMM=False)):
            token_of.extend([n] * len(word))
            boundaries.add(len(token_of))
        for i, j, head in spans:
            if token_of[i] != token_of[j - 1] and not (i in boundaries and j in boundaries):
                continue
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
        fuzzy = [tuple({fuzzy_syllable(r): None for r in rs}) for rs in reads]
        for length in self.pinyin_lengths:
            for i in range(len(seg) - length + 1):
                if all(covered[i : i + length]) or not all(reads[i : i + length]):
                    continue
                gram = seg[i : i + length]
                for table, spell, quality in (
                    (self._exact, reads, PINYIN_QUALITY),
                    (self._fuzzy, fuzzy, FUZZY_QUALITY),
                ):
                    word = self._sound_hit(gram, table, _spellings(spell[i : i + length]))
                    if word is not None:
                        head = self.surface[word]
                        if found.get(head, 0.0) < quality:
                            found[head] = quality
                        break

    def _sound_hit(
        self, gram: str, table: dict[tuple[str, ...], list[str]], spellings: list[tuple[str, ...]]
    ) -> str | None:
        for syls in spellings:
            for word in table.get(syls, ()):
                if word == gram:
                    continue
                if len(gram) <= 2 and not any(a == b for a, b in zip(word, gram, strict=True)):
                    continue  # two-character whole-word swaps are other words, not slips
                gram_freq = base_frequency(gram)
                if gram_freq == 0 or gram_freq * 2 < base_frequency(word):
                    return word
        return None
