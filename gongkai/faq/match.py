"""Finding an FAQ's words in a resident's question: literally, through synonyms, or by sound.

A match is (canonical word → quality): 1.0 for the word or a synonym as written, less for a
homophone slip (低宝 for 低保) because sound alone is weaker evidence than spelling.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from itertools import islice, product
from typing import TYPE_CHECKING, Any

from gongkai.faq.text import (
    base_frequency,
    fuzzy_readings,
    fuzzy_syllable,
    match_form,
    readings,
)

if TYPE_CHECKING:
    import jieba

__all__ = ["KEYWORD_FREQ", "WordMatcher"]

PINYIN_QUALITY = 0.9
FUZZY_QUALITY = 0.75
KEYWORD_FREQ = 50_000  # high enough that jieba keeps an FAQ keyword in one piece
_MAX_SPELLINGS = 8  # polyphone combinations indexed / tried per word
# Segments whose words are kept, per matcher (so per FAQ index): a question is found segment by
# segment, and the same segments come again and again: the greetings that open a question
# (你好，, 麻烦问一下，) and, after a notice, the question itself behind each of them.
SEGMENT_CACHE = 8192
_END = ""  # a trie node's words (no syllable is empty)

Trie = dict[str, "Trie | list[str]"]
_NOTHING: dict[int, list[tuple[tuple[int, ...], list[str]]]] = {}  # never written to


def _spellings(reads: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Every way to read a run of characters (bounded: 行长 has four, most words one)."""
    return list(islice(product(*reads), _MAX_SPELLINGS))


def segments(text: str) -> tuple[str, ...]:
    """The runs of word characters `WordMatcher.find` reads, in `match_form`: texts differing
    only in punctuation and spacing ("低保咋办？" and "低保咋办。") have the same ones."""
    return tuple(match_form(text).split())


class WordMatcher:
    """Knows every surface form of every keyword and finds them in a question."""

    def __init__(self, surface: dict[str, str], tokenizer: jieba.Tokenizer) -> None:
        self.surface = surface  # surface form (match_form, no spaces) → canonical head word
        self.tokenizer = tokenizer
        self.max_len = max((len(w) for w in surface), default=0)
        self._spelled: dict[str, Any] = {}  # character by character → the head word at _END
        for form, head in surface.items():
            node = self._spelled
            for ch in form:
                node = node.setdefault(ch, {})
            node[_END] = head
        # Toneless syllables → words that sound like that, as tries walked syllable by syllable
        # from each character of a question; fuzzy: with zh/z, n/l … merged.
        self._exact: Trie = {}
        self._fuzzy: Trie = {}
        self.pinyin_lengths: set[int] = set()
        for word in surface:
            reads = [readings(ch) for ch in word]
            if len(word) < 2 or not all(reads):
                continue
            for syls in _spellings(reads):
                _add(self._exact, syls, word)
                _add(self._fuzzy, tuple(fuzzy_syllable(s) for s in syls), word)
            self.pinyin_lengths.add(len(word))
        self._longest_sound = max(self.pinyin_lengths, default=0)
        self._segment = lru_cache(maxsize=SEGMENT_CACHE)(self._find_segment)

    def find(self, text: str) -> dict[str, float]:
        """Canonical words present in `text`, each with the best quality it was found with."""
        return self.find_in(segments(text))

    def find_in(self, segs: tuple[str, ...]) -> dict[str, float]:
        """`find` over a text's `segments`: all that a text's words depend on.

        Each segment is read on its own (what one finds never depends on another), so the
        words of a segment read before are taken as they were found; a word found in several
        segments keeps its best quality, in the order the words were first found."""
        found: dict[str, float] = {}
        for seg in segs:
            for head, quality in self._segment(seg).items():
                if found.get(head, 0.0) < quality:
                    found[head] = quality
        return found

    def _find_segment(self, seg: str) -> dict[str, float]:
        """One segment's words (kept by `find_in`: never changed once returned)."""
        found: dict[str, float] = {}
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
        spelled, n = self._spelled, len(seg)
        for i in range(n):
            node = spelled.get(seg[i])
            j = i + 1
            while node is not None:
                head = node.get(_END)
                if head is not None:
                    spans.append((i, j, head))
                if j == n:
                    break
                node = node.get(seg[j])
                j += 1
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
        Each n-gram is read in at most ``_MAX_SPELLINGS`` ways (its polyphones' readings in
        order); the first word found, reading by reading, is the one it is taken for, and a
        word sounding exactly alike wins over one that only sounds alike to a fuzzy ear.
        """
        reads = [readings(ch) for ch in seg]
        fuzzy = [fuzzy_readings(ch) for ch in seg]
        exact_starts, fuzzy_starts = self._exact.keys(), self._fuzzy.keys()
        for i in range(len(seg) - 1):
            if not reads[i]:
                continue
            # most characters begin no keyword's sound: not worth a walk
            exact = (
                _NOTHING
                if exact_starts.isdisjoint(reads[i])
                else self._heard(self._exact, reads, i)
            )
            loose = (
                _NOTHING
                if fuzzy_starts.isdisjoint(fuzzy[i])
                else self._heard(self._fuzzy, fuzzy, i)
            )
            if exact is _NOTHING and loose is _NOTHING:
                continue
            for length in sorted(exact.keys() | loose.keys()):
                if all(covered[i : i + length]):
                    continue
                gram = seg[i : i + length]
                for hits, spell, quality in (
                    (exact, reads, PINYIN_QUALITY),
                    (loose, fuzzy, FUZZY_QUALITY),
                ):
                    word = self._sound_hit(gram, hits.get(length, ()), spell[i : i + length])
                    if word is not None:
                        head = self.surface[word]
                        if found.get(head, 0.0) < quality:
                            found[head] = quality
                        break

    def _heard(
        self, trie: Trie, spell: list[tuple[str, ...]], start: int
    ) -> dict[int, list[tuple[tuple[int, ...], list[str]]]]:
        """Words the characters from ``start`` on can be read as: length → [(which reading
        of each character, the words)]."""
        stack: list[tuple[Trie, tuple[int, ...]]] = []
        for n, syllable in enumerate(spell[start]):
            child = trie.get(syllable)
            if child is not None:
                stack.append((child, (n,)))  # type: ignore[arg-type]
        if not stack:
            return _NOTHING
        out: dict[int, list[tuple[tuple[int, ...], list[str]]]] = {}
        end = min(len(spell), start + self._longest_sound)
        while stack:
            node, choice = stack.pop()
            words = node.get(_END)
            if words is not None:
                out.setdefault(len(choice), []).append((choice, words))  # type: ignore[arg-type]
            j = start + len(choice)
            if j >= end:
                continue
            for n, syllable in enumerate(spell[j]):
                child = node.get(syllable)
                if child is not None:
                    stack.append((child, (*choice, n)))  # type: ignore[arg-type]
        return out

    def _sound_hit(
        self,
        gram: str,
        hits: Iterable[tuple[tuple[int, ...], list[str]]],
        spell: list[tuple[str, ...]],
    ) -> str | None:
        """The first word ``gram`` is taken for, in the order its readings are tried."""
        ordered: list[tuple[int, list[str]]] = []
        for choice, words in hits:
            rank = 0
            for position, n in enumerate(choice):  # the reading's place in product() order
                rank = rank * len(spell[position]) + n
            if rank < _MAX_SPELLINGS:
                ordered.append((rank, words))
        ordered.sort(key=lambda hit: hit[0])
        gram_freq: int | None = None
        for _, words in ordered:
            for word in words:
                if word == gram:
                    continue
                if len(gram) <= 2 and not any(a == b for a, b in zip(word, gram, strict=True)):
                    continue  # two-character whole-word swaps are other words, not slips
                if gram_freq is None:
                    gram_freq = base_frequency(gram)
                if gram_freq == 0 or gram_freq * 2 < base_frequency(word):
                    return word
        return None


def _add(trie: Trie, syllables: tuple[str, ...], word: str) -> None:
    node = trie
    for syllable in syllables:
        node = node.setdefault(syllable, {})  # type: ignore[assignment]
    node.setdefault(_END, []).append(word)  # type: ignore[union-attr]
