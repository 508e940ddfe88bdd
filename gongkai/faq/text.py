"""Text handling for the FAQ engine: normalising, word segmentation, pinyin, numeric replies.

Residents type on phones in a hurry: full-width digits, emoji, dialect words, homophone slips
from pinyin input (低宝 for 低保). Everything here turns that into something comparable.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # jieba and pypinyin take ~0.5 s to import; only the first question pays it
    import jieba

__all__ = [
    "GENERIC_WORDS",
    "clean_text",
    "fuzzy_readings",
    "fuzzy_syllable",
    "match_form",
    "new_tokenizer",
    "normalize_question",
    "parse_choice",
    "preload",
    "readings",
]

# Words that appear in questions about almost anything. They still count, but little: otherwise
# "我要投诉村干部" would be answered by whichever entry lists 投诉 first.
GENERIC_WORDS = frozenset(
    "申请 办理 办 怎么 怎么办 如何 咋 咋办 多少 多少钱 哪里 在哪 什么 啥 补贴 补助 标准 条件 材料"
    " 手续 流程 政策 时间 需要 查询 查 领取 领 发放 投诉 举报 反映 问题 咨询 钱 电话 公开 补办"
    " 缴费 交 每月 一个月 可以 能 不能 有没有 给 发 多久".split()
)

_MAX_NORMALIZED = 200  # Question.normalized column length
_RUN = re.compile(r"(\D)\1{2,}")


def _keep(ch: str) -> bool:
    """Letters, digits and combining marks carry meaning; punctuation, symbols, emoji don't."""
    return unicodedata.category(ch)[0] in "LNM"


def clean_text(text: str) -> str:
    """NFKC (full-width → half-width), lowercase, every non-word character becomes a space."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch if _keep(ch) else " " for ch in text)


_AGE = re.compile(r"([一二三四五六七八九十百零]+)(周?岁)")


def _age_in_digits(match: re.Match[str]) -> str:
    """八十岁 → 80岁, 一百零五岁 → 105岁, read by cn2an (imported here: ~0.2 s, and only a
    question that mentions an age needs it). Speech drops the 一 of 一百 (百岁老人), which
    cn2an wants back; a numeral it still cannot read (十十岁) is left as typed, not guessed."""
    import cn2an

    numeral = match.group(1)
    try:
        number = cn2an.cn2an("一" + numeral if numeral[0] == "百" else numeral, "normal")
    except ValueError:
        return match.group(0)
    return f"{number}{match.group(2)}"


def match_form(text: str) -> str:
    """`clean_text` plus ages in digits ("九十岁" → "90岁"), the form keywords are matched in."""
    text = clean_text(text)
    if "岁" in text:
        text = _AGE.sub(_age_in_digits, text)
    return text


def normalize_question(text: str) -> str:
    """A grouping key for unanswered questions: "低保咋办？？" and "低保 咋办!" group together.

    Runs of three or more of the same non-digit character collapse ("啊啊啊" → "啊"), so
    emphasis does not split groups while numbers such as 1000 stay intact.
    """
    squeezed = "".join(clean_text(text).split())
    return _RUN.sub(r"\1", squeezed)[:_MAX_NORMALIZED]


# --- word segmentation --------------------------------------------------------------------------

_base_lock = threading.Lock()
_base: jieba.Tokenizer | None = None


def _base_tokenizer() -> jieba.Tokenizer:
    """jieba's dictionary takes about a second to load; load it once per process, on first use."""
    global _base
    import jieba

    with _base_lock:
        if _base is None:
            jieba.setLogLevel(logging.WARNING)  # jieba logs its loading progress to stderr
            tok = jieba.Tokenizer()
            tok.initialize()
            _base = tok
        return _base


def preload() -> None:
    """Load jieba's dictionary now (e.g. at service start-up) instead of on the first question."""
    _base_tokenizer()


def new_tokenizer(words: dict[str, int]) -> jieba.Tokenizer:
    """A private tokenizer: jieba's dictionary plus `words`, without touching the global one.

    Copying the loaded frequency table costs ~10 ms, so an index rebuilt after every FAQ import
    does not pay jieba's full load again.
    """
    import jieba

    base = _base_tokenizer()
    tok = jieba.Tokenizer()
    tok.FREQ = dict(base.FREQ)
    tok.total = base.total
    tok.initialized = True
    for word, freq in words.items():
        tok.add_word(word, freq=max(freq, tok.FREQ.get(word, 0)))
    return tok


def base_frequency(word: str) -> int:
    """How common a word is in jieba's general dictionary (0 when unknown)."""
    return _base_tokenizer().FREQ.get(word, 0)


# --- pinyin -------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def readings(ch: str) -> tuple[str, ...]:
    """Toneless pinyin readings of one character (all of a polyphone's); empty for non-Han."""
    if not ("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"):
        return ()
    from pypinyin import Style, pinyin

    got = pinyin(ch, style=Style.NORMAL, heteronym=True, errors="ignore")
    return tuple(dict.fromkeys(got[0])) if got else ()


@lru_cache(maxsize=65536)
def fuzzy_readings(ch: str) -> tuple[str, ...]:
    """`readings` as a fuzzy ear hears them (see `fuzzy_syllable`), each once, in order."""
    return tuple(dict.fromkeys(fuzzy_syllable(r) for r in readings(ch)))


_FUZZY_INITIAL = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINAL = (("ang", "an"), ("eng", "en"), ("ing", "in"), ("uang", "uan"))


@lru_cache(maxsize=8192)
def fuzzy_syllable(syl: str) -> str:
    """Merge sounds many northern and Inner Mongolian speakers do not tell apart (zh/z, n/l…)."""
    for long, short in _FUZZY_INITIAL:
        if syl.startswith(long):
            syl = short + syl[len(long) :]
            break
    for long, short in _FUZZY_FINAL:
        if syl.endswith(long):
            syl = syl[: -len(long)] + short
            break
    return syl


# --- numeric replies to a "choose" message ------------------------------------------------------

_CN_DIGITS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CHOICE = re.compile(
    r"^(?:选|选择|我选|要|是)?第?([0-9]{1,2}|十|[一二两三四五六七八九])(?:个|条|项|号|题)?"
    r"(?:吧|啊|呀|的)?$"
)


def parse_choice(reply: str) -> int | None:
    """ "2", "２", "二", "第二个", "选3" → the 1-based number; anything else → None."""
    text = "".join(clean_text(reply).split())
    m = _CHOICE.match(text)
    if not m:
        return None
    token = m.group(1)
    if token.isdigit():
        return int(token)
    if token == "十":
        return 10
    return _CN_DIGITS[token]
