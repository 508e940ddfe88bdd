"""Turn written Chinese notices into what a village broadcaster actually says.

A loudspeaker script is read aloud by a committee member or by a speech engine; both stumble on
``2026-12-01``, ``30%``, ``伊政办发〔2026〕41号``, a URL or a Markdown table. Everything here is
a pure function over strings, so the rules are cheap to test one by one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import cn2an

from gongkai.channels.markdown_speech import MASK, assert_speakable, strip_markdown

__all__ = [
    "assert_speakable",
    "estimate_read_seconds",
    "number_words",
    "phone_digits",
    "spoken_phone",
    "spoken_sentences",
    "strip_markdown",
    "to_spoken",
]

MAX_SENTENCE = 25  # characters a listener takes in at once; cut at a comma beyond this
ZH_CHARS_PER_SECOND = 4.0  # county broadcast pace
WORDS_PER_SECOND = 2.0  # Mongolian, Uyghur …: about 120 words a minute
PAUSE_SECONDS = 0.3  # the breath at each sentence end

_PHONE_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))
_YEAR_DIGITS = dict(zip("0123456789", "〇一二三四五六七八九", strict=True))
_PLAIN_DIGITS = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
_FULL_WIDTH = str.maketrans(
    "０１２３４５６７８９％．：／～＋－＝＜＞＃＊｜［］＞",
    "0123456789%.:/~+-=<>#*|[]>",
)

# After these a bare 2 is 两 (两个人, 两万元), never 二.
_LIANG_UNITS = "个人户名位次家项种本张份辆台天周万千亿元块岁亩头只间套所座倍遍条棵匹"
# Units that make a long digit run a quantity, not an account or a phone number.
_QUANTITY_UNITS = _LIANG_UNITS + "年月日号分秒米吨斤克度%‰期批届级"

NUM = r"\d+(?:\.\d+)?"
RANGE_SEP = r"\s*[-~—–至到]\s*"


def number_words(number: str) -> str:
    """An amount as words: 1200.50 → 一千二百点五, 2000 → 两千, 0.5 → 零点五."""
    whole, _, frac = number.partition(".")
    words = _cardinal(whole) if whole else "零"
    for big in ("千", "万", "亿"):
        if words.startswith("二" + big):
            words = "两" + words[1:]
    frac = frac.rstrip("0")
    if frac:
        words += "点" + "".join(_PLAIN_DIGITS[d] for d in frac)
    return words


def phone_digits(digits: str) -> str:
    """Digit by digit, with 幺 for 1 as a telephone operator says it."""
    return "".join(_PHONE_DIGITS.get(d, "") for d in digits)


def spoken_phone(number: str) -> str:
    """A telephone number as dialled: 0477-8612345 → 零四七七—八六幺二三四五."""
    groups = [g for g in re.split(r"\D+", number.translate(_FULL_WIDTH)) if g]
    return "—".join(phone_digits(g) for g in groups)


def _year(digits: str) -> str:
    return "".join(_YEAR_DIGITS[d] for d in digits)


def _cardinal(n: str) -> str:
    if len(n.lstrip("0")) > 12:  # no one says 千亿 in a notice: this is a code, read it out
        return "".join(_PLAIN_DIGITS[d] for d in n)
    return cn2an.an2cn(str(int(n)))


def _time(hour: str, minute: str) -> str | None:
    h, m = int(hour), int(minute)
    if h > 24 or m > 59:
        return None
    words = ("两" if h == 2 else _cardinal(hour)) + "点"
    if m:
        words += ("零" if m < 10 else "") + _cardinal(minute) + "分"
    return words


def _date(y: str, mo: str, d: str | None) -> str | None:
    if not 1 <= int(mo) <= 12 or (d is not None and not 1 <= int(d) <= 31):
        return None
    words = f"{_year(y)}年{_cardinal(mo)}月"
    return words + (f"{_cardinal(d)}日" if d is not None else "")


def _masks(text: str) -> str:
    """138****0000 → 尾号零零零零, 王** → 王某某: say what is left, not the stars."""
    tail = {**_PHONE_DIGITS, "X": "叉", "x": "叉"}
    text = re.sub(rf"\d*{MASK}+([\dXx]+)", lambda m: "尾号" + "".join(tail[c] for c in m[1]), text)
    text = re.sub(rf"(?<=[\u4e00-\u9fff]){MASK}+", lambda m: "某" * len(m[0]), text)
    return text.replace(MASK, "")


def _sub(pattern: str, fn: Callable[[re.Match[str]], str | None], text: str) -> str:
    """re.sub where the replacer may decline (None keeps the original text)."""

    def repl(m: re.Match[str]) -> str:
        out = fn(m)
        return m.group(0) if out is None else out

    return re.sub(pattern, repl, text)


_HOTLINE_CONTEXT = r"(?:拨打|致电|报警|急救|火警|热线|电话|呼叫)"
_PHONE_CONTEXT = r"(?:电话|热线|手机|联系方式|拨打|致电|传真|号码|邮编|邮政编码|QQ|微信号)"


def _phones(text: str) -> str:
    # 0477-8612345, 010 12345678
    text = _sub(
        r"(?<![\d.])(0\d{2,3})[-—\s]?(\d{7,8})(?![\d.])",
        lambda m: f"{phone_digits(m[1])}—{phone_digits(m[2])}",
        text,
    )
    # 13800001111, 138-0000-1111
    text = _sub(
        r"(?<![\d.])(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![\d.])",
        lambda m: phone_digits(m[1] + m[2] + m[3]),
        text,
    )
    # service hotlines: 12345, 12315, 12348 … (but not 12345元)
    text = _sub(
        rf"(?<![\d.])(123\d\d)(?![\d.]|\s*[{_QUANTITY_UNITS}])",
        lambda m: phone_digits(m[1]),
        text,
    )
    # 110 / 119 / 120 / 122 after 拨打, 报警 …
    text = _sub(
        rf"({_HOTLINE_CONTEXT}[^，。；\d]{{0,4}})(11[09]|12[02])(?!\d)",
        lambda m: m[1] + phone_digits(m[2]),
        text,
    )
    # anything else written right after 电话：, 邮编 … is read digit by digit
    return _sub(
        rf"({_PHONE_CONTEXT}[号码为是：:\s]*)(\d[\d\-— ]*\d)(?![\d.]|\s*[{_QUANTITY_UNITS}])",
        lambda m: m[1] + "—".join(phone_digits(p) for p in re.split(r"[-— ]+", m[2])),
        text,
    )


def _dates_and_times(text: str) -> str:
    # ranges of dates: 12月1日—12月5日, 2026-12-01至2026-12-05
    text = re.sub(r"(?<=[日月年号])[ \t]*[-—–~]+[ \t]*(?=\d)", "到", text)
    text = re.sub(r"(?<=\d)[ \t]*[—–~]+[ \t]*(?=\d{4}[-/.]\d)", "到", text)
    # document numbers: 伊政办发〔2026〕41号 → 伊政办发二〇二六年第四十一号
    text = _sub(
        r"[〔\[［(（【]\s*(\d{4})\s*[〕\]］)）】]\s*第?\s*(\d+)\s*号",
        lambda m: f"{_year(m[1])}年第{_cardinal(m[2])}号",
        text,
    )
    text = _sub(
        r"(?<![\d.])(\d{4})(?:[-/.]|\s*年\s*)(\d{1,2})(?:[-/.]|\s*月\s*)(\d{1,2})(?:\s*日|\s*号)?"
        r"(?![\d.])",
        lambda m: _date(m[1], m[2], m[3]),
        text,
    )
    text = _sub(
        r"(?<![\d.])(\d{4})\s*年\s*(\d{1,2})\s*月(?!\d)", lambda m: _date(m[1], m[2], None), text
    )
    year = r"(1[5-9]\d\d|2[0-2]\d\d)"
    text = _sub(
        rf"(?<![\d.]){year}{RANGE_SEP}{year}(?![\d.])",
        lambda m: f"{_year(m[1])}到{_year(m[2])}",
        text,
    )
    text = _sub(rf"(?<![\d.]){year}(?=\s*(?:年|届|级)(?!级))", lambda m: _year(m[1]), text)
    clock = r"(\d{1,2})[:：](\d{2})(?![\d:])"

    def time_range(m: re.Match[str]) -> str | None:
        a, b = _time(m[1], m[2]), _time(m[3], m[4])
        return f"{a}到{b}" if a and b else None

    text = _sub(rf"(?<![\d.:]){clock}{RANGE_SEP}{clock}", time_range, text)
    return _sub(rf"(?<![\d.:]){clock}", lambda m: _time(m[1], m[2]), text)


def _quantities(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 1,200.50 → 1200.50
    pct = {"%": "百分之", "‰": "千分之"}
    text = _sub(
        rf"({NUM})\s*([%‰])?{RANGE_SEP}({NUM})\s*([%‰])",
        lambda m: f"{pct[m[4]]}{number_words(m[1])}到{pct[m[4]]}{number_words(m[3])}",
        text,
    )
    text = _sub(rf"({NUM})\s*([%‰])", lambda m: pct[m[2]] + number_words(m[1]), text)
    text = _sub(
        rf"(?<![\w.])-\s*({NUM})\s*(?:℃|°C)", lambda m: f"零下{number_words(m[1])}摄氏度", text
    )
    text = re.sub(r"(?<=\d)\s*(?:℃|°C)", "摄氏度", text)
    text = _sub(
        r"(?<![\d/.])(\d+)/(\d+)(?![\d/.])",
        lambda m: f"{_cardinal(m[2])}分之{_cardinal(m[1])}" if int(m[1]) < int(m[2]) else None,
        text,
    )
    text = _sub(
        rf"(?<![\d.])({NUM}){RANGE_SEP}({NUM})(?![\d.])",
        lambda m: f"{number_words(m[1])}到{number_words(m[2])}",
        text,
    )
    units = {"km": "公里", "kg": "公斤", "cm": "厘米", "mm": "毫米", "m²": "平方米", "㎡": "平方米"}
    units |= {"m2": "平方米", "kWh": "千瓦时", "m": "米", "t": "吨", "g": "克"}
    text = _sub(
        r"(?<=\d)\s*(km|kg|cm|mm|m²|㎡|m2|kWh|m|t|g)(?![A-Za-z])", lambda m: units[m[1]], text
    )
    # a bare 2 before a measure word is 两 (两个, 两户), but 第2条 stays 第二条
    text = re.sub(rf"(?<![\d.第])2(?=[{_LIANG_UNITS}](?!级))", "两", text)

    def plain(m: re.Match[str]) -> str:
        digits = m[0]
        if "." in digits:
            return number_words(digits)
        followed = text_after(m)
        counted = bool(followed) and followed[0] in _QUANTITY_UNITS
        if (digits.startswith("0") and len(digits) > 1) or (len(digits) > 8 and not counted):
            return phone_digits(digits)  # codes, account numbers, 007
        return number_words(digits)

    def text_after(m: re.Match[str]) -> str:
        return m.string[m.end() : m.end() + 1]

    text = re.sub(r"\d+(?:\.\d+)?", plain, text)
    return text


_LATIN_WORDS = {
    "APP": "手机应用",
    "App": "手机应用",
    "app": "手机应用",
    "WiFi": "无线网络",
    "Wi-Fi": "无线网络",
    "wifi": "无线网络",
    "WeChat": "微信",
    "GDP": "国内生产总值",
    "CPI": "居民消费价格指数",
    "PM2.5": "PM二点五",
    "Email": "电子邮件",
    "E-mail": "电子邮件",
    "email": "电子邮件",
}


def _latin(text: str) -> str:
    for word, spoken in _LATIN_WORDS.items():
        text = re.sub(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", spoken, text)
    text = re.sub(r"\.(?:docx?|xlsx?|pdf|wps|et|jpe?g|png|zip|rar|txt)\b", "", text, flags=re.I)

    def word(m: re.Match[str]) -> str:
        token = m[0]
        if token.isupper() and len(token) <= 6:
            return token  # acronyms (QQ, PDF, ETC) are read letter by letter anyway
        if token.islower():
            return ""  # leftovers of user names, file names, domains: nothing to hear
        return token

    return re.sub(r"[A-Za-z][A-Za-z'-]*", word, text)


_SYMBOLS = [
    (r"≥|>=", "不低于"),
    (r"≤|<=", "不超过"),
    (r">", "大于"),
    (r"<", "小于"),
    (r"(?<=[元吨亩斤米度户人次])/(?=[人户月年天日次亩斤吨平小周台辆公])", "每"),
    (r"(?<=[人户])·(?=[月年天日次])", "每"),  # 元/人·月
    (r"/", "、"),
    (r"&", "和"),
    (r"=", "等于"),
    (r"\+", "加"),
    (r"@", ""),
    (r"(?<=[\u4e00-\u9fff])\s*[-~]\s*(?=[\u4e00-\u9fff])", "到"),
    (r"~", "到"),
    (r"\.{3,}|…+", "……"),
    (r",", "，"),
    (r":", "："),
    (r";", "；"),
    (r"!", "！"),
    (r"\?", "？"),
    (r"\(", "（"),
    (r"\)", "）"),
    (r"[#*`|\[\]_^\\]", ""),
    (r"(?<=[\u3000-\u9fff，。；：！？（）])[ \t]+|[ \t]+(?=[\u3000-\u9fff，。；：！？（）])", ""),
    (r"[ \t]{2,}", " "),
    (r"（\s*）", ""),
    (r"([，、；：])[，、；：]+", r"\1"),
    (r"[，、；：]+(?=[。！？])", ""),
]


def to_spoken(text: str, *, url_words: str = "详情请看村务公开栏") -> str:
    """The Chinese spoken form: numbers in words, no Markdown, no URL, short sentences.

    Lines stay lines (a paragraph, a list item, a table row each), so callers can keep the
    layout of a script while every sentence is already speakable.
    """
    text = text.translate(_FULL_WIDTH)
    text = re.sub(r"(?<=\d)#", "号", text)  # 3#楼
    text = strip_markdown(text, url_words=url_words)
    text = _masks(text)
    text = _dates_and_times(text)
    text = _phones(text)
    text = _quantities(text)
    text = _latin(text)
    for pattern, replacement in _SYMBOLS:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"\d", lambda m: _PLAIN_DIGITS[m[0]], text)  # nothing numeric escapes
    lines = (_cut_long(line.strip(" \t，、")) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _cut_long(line: str, limit: int = MAX_SENTENCE) -> str:
    """Cut sentences longer than ``limit`` at commas into sentences of their own."""
    out = []
    for sentence in re.findall(r"[^。！？；]+[。！？；]*", line):
        body = sentence.rstrip("。！？；")
        end = sentence[len(body) :]
        if len(body) <= limit:
            out.append(sentence)
            continue
        clauses = _top_level_clauses(body)
        current = clauses[0]
        pieces = []
        for clause in clauses[1:]:
            if len(current) + 1 + len(clause) > limit:
                pieces.append(current)
                current = clause
            else:
                current += "，" + clause
        pieces.append(current)
        out.append("。".join(pieces) + (end or ""))
    return "".join(out)


def _top_level_clauses(body: str) -> list[str]:
    """The clauses between commas outside brackets: a cut inside （…） would leave the bracket
    open on one line of the script and closed on the next."""
    clauses: list[str] = []
    depth = start = 0
    for i, ch in enumerate(body):
        if ch in "（(【《「“":
            depth += 1
        elif ch in "）)】》」”":
            depth = max(0, depth - 1)
        elif ch == "，" and depth == 0:
            clauses.append(body[start:i])
            start = i + 1
    clauses.append(body[start:])
    return clauses


def spoken_sentences(text: str, lang: str = "zh") -> list[str]:
    """The script as a list of sentences, each closed by its end mark."""
    if lang == "zh":
        sentences = []
        for line in to_spoken(text).split("\n"):
            for s in re.findall(r"[^。！？；]+[。！？；]*", line):
                s = s.strip()
                if s:
                    sentences.append(s if s[-1] in "。！？；：" else s + "。")
        return sentences
    cleaned = re.sub(r"[ \t]{2,}", " ", strip_markdown(text, url_words="", lang=lang))
    found = re.findall(r"[^᠃᠉!?؟\n]+[᠃᠉!?؟]*", cleaned)
    return [s.strip(" \t") for s in found if s.strip(" \t")]


def estimate_read_seconds(text: str, lang: str = "zh") -> int:
    """Seconds a steady reader needs: characters for Chinese, words for alphabetic scripts."""
    if lang == "zh":
        spoken = re.findall(r"[\u4e00-\u9fff\u3007A-Za-z]", text)
        pauses = len(re.findall(r"[。！？；\n]", text))
        return math.ceil(len(spoken) / ZH_CHARS_PER_SECOND + pauses * PAUSE_SECONDS)
    # a word ends at an ordinary space or line break; U+202F binds a suffix to its word
    words = re.findall(r"[^ \t\r\n]+", text)
    pauses = len(re.findall(r"[᠃᠉!?؟\n]", text))
    return math.ceil(len(words) / WORDS_PER_SECOND + pauses * PAUSE_SECONDS)
