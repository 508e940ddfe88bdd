"""Markdown, links and masks turned into plain lines a reader can say, in any language.

Bodies arrive as Markdown; a loudspeaker has no bold and no table. The Chinese number rules live
in ``spoken.py``; this module only removes what is written-only, and must keep U+202F (the
Mongolian suffix joiner) intact, so it never treats every Unicode space as a space.
"""

from __future__ import annotations

import re

SPEECH_MARKS = "#*`|[]>"
MASK = "\u2217"  # stands for a masked character (王**, 138****0000) until a language names it

URL_RE = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"'，。；！？、）)】\]]+"
    r"|(?<![A-Za-z0-9.@-])[a-z0-9-]+(?:\.[a-z0-9-]+)*"
    r"\.(?:gov\.cn|com\.cn|org\.cn|net\.cn|cn|com|net|org|gov|edu)(?![A-Za-z0-9-])"
    r"(?:/[^\s，。；！？、）)】\]]*)?",
    re.IGNORECASE,
)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL_LEAD = r"(?:详情请登录|详情请见|详情见|详见|请登录|登录|请访问|访问|网址|网站|链接|地址|点击)"

_PUNCT = {
    "zh": {"sep": "，", "end": "。", "colon": "：", "ordinal": "、"},
    "mn": {"sep": "᠂ ", "end": "᠃", "colon": ": ", "ordinal": ". "},
}
_DEFAULT_PUNCT = {"sep": ", ", "end": ".", "colon": ": ", "ordinal": ". "}
_ENDINGS = "。！？；：!?;:.᠃᠉؟"
_NO_EMPHASIS_START = r"(?=[^\s、，。；：！？,.;:])"


def punctuation(lang: str) -> dict[str, str]:
    return _PUNCT.get(lang, _DEFAULT_PUNCT)


def speech_marks_left(text: str) -> list[str]:
    return [mark for mark in SPEECH_MARKS if mark in text]


def strip_markdown(text: str, *, url_words: str = "", lang: str = "zh") -> str:
    """Plain lines: headers, list items and table rows become sentences; links their text.

    A URL is dropped; after words such as 详见 or 网址 it becomes ``url_words`` (where the
    listener can look instead). Masked characters are left as ``MASK`` for the caller.
    """
    p = punctuation(lang)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.I)
    text = re.sub(r"</?[A-Za-z][^<>\n]*>", "", text)
    text = _masks_with_digits(text)
    out: list[str] = []
    in_fence = False
    for line in _tables(text.split("\n"), p):
        if re.match(r"^[ \t]*(```|~~~)", line):
            in_fence = not in_fence
            continue
        if not in_fence:
            line = _block(line, p)
        out.append(_inline(line, url_words))
    text = "\n".join(line.strip(" \t") for line in out)
    text = re.sub(r"[#*`|\[\]]", "", text)
    text = re.sub(r"[(（][ \t]*[)）]", "", text)
    return re.sub(r"\n{2,}", "\n", text).strip("\n")


def _masks_with_digits(text: str) -> str:
    # 138****0000, 152701********123X, ****1234 — before any * can look like emphasis
    text = re.sub(
        r"(?<![\dXx])(\d{2,})\*{2,}([\dXx]{1,6})(?![\dXx])",
        lambda m: m[1] + MASK + m[2],
        text,
    )
    return re.sub(r"(?<![\d*])\*{3,}([\dXx]{2,6})(?![\dXx])", lambda m: MASK + m[1], text)


def _masked_names(text: str) -> str:
    # 王**, 李* — after emphasis is gone, so a closing ** of bold is not mistaken for a mask
    return re.sub(
        r"([\u4e00-\u9fff])(\*{1,3})(?![*\u4e00-\u9fffA-Za-z0-9])",
        lambda m: m[1] + MASK * len(m[2]),
        text,
    )


def _close(text: str, p: dict[str, str]) -> str:
    text = text.rstrip(" \t")
    if text and text[-1] not in _ENDINGS:
        text += p["end"]
    return text


def _block(line: str, p: dict[str, str]) -> str:
    if re.fullmatch(r"[ \t]*([-*_])([ \t]*\1){2,}[ \t]*", line):
        return ""  # horizontal rule
    if re.match(r"^[ \t]*\[[^\]]+\]:[ \t]*\S+", line):
        return ""  # link reference definition
    line = re.sub(r"^[ \t]*(>[ \t]?)+", "", line)
    if m := re.match(r"^[ \t]{0,3}#{1,6}[ \t]*(.*?)[ \t]*#*[ \t]*$", line):
        return _close(m[1], p)
    if m := re.match(r"^[ \t]*[-*+•][ \t]+(.*)$", line):
        return _close(m[1], p)
    if m := re.match(r"^[ \t]*(\d{1,2})[.．)][ \t]*(?=\D)(.*)$", line):
        return _close(m[1] + p["ordinal"] + m[2], p)
    return line


def _inline(line: str, url_words: str) -> str:
    line = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", line)
    line = re.sub(r"\[([^\]]+)\]\(\s*<?[^)\s>]*>?(?:\s+\"[^\"]*\")?\s*\)", r"\1", line)
    line = re.sub(r"\[\^[^\]]+\]", "", line)
    line = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", line)
    line = re.sub(r"<((?:https?|ftp)://[^>]+)>", r"\1", line)
    line = re.sub(r"`+([^`]+)`+", r"\1", line)
    line = re.sub(r"~~[^~\n]+~~", "", line)
    line = re.sub(rf"(\*\*|__){_NO_EMPHASIS_START}([^\n]*?\S)\1", r"\2", line)
    line = re.sub(rf"\*{_NO_EMPHASIS_START}([^*\n]*?\S)\*", r"\1", line)
    line = re.sub(
        rf"(?<![A-Za-z0-9])_{_NO_EMPHASIS_START}([^_\n]*?\S)_(?![A-Za-z0-9])", r"\1", line
    )
    line = _masked_names(line)
    for pattern in (URL_RE, EMAIL_RE):
        line = re.sub(
            rf"{_URL_LEAD}[ \t]*[：:]?[ \t]*[(（]?[ \t]*(?:{pattern.pattern})[ \t]*[)）]?",
            url_words,
            line,
            flags=re.IGNORECASE,
        )
        line = pattern.sub("", line)
    return line


def _is_row(line: str) -> bool:
    return "|" in line and bool(line.strip(" \t|"))


def _is_separator(line: str) -> bool:
    cell = r"[ \t]*:?-{3,}:?[ \t]*"
    return bool(re.fullmatch(rf"[ \t]*\|?{cell}(\|{cell})*\|?[ \t]*", line))


def _cells(line: str) -> list[str]:
    line = line.strip(" \t")
    line = line.removeprefix("|").removesuffix("|")
    return [c.strip(" \t") for c in line.split("|")]


def _tables(lines: list[str], p: dict[str, str]) -> list[str]:
    """A table read row by row: "项目，数值。", or "名称，列名：值，列名：值。" when wider."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not (_is_row(lines[i]) and i + 1 < len(lines) and _is_separator(lines[i + 1])):
            out.append(lines[i])
            i += 1
            continue
        header = _cells(lines[i])
        i += 2
        while i < len(lines) and _is_row(lines[i]) and not _is_separator(lines[i]):
            cells = _cells(lines[i])
            i += 1
            spoken = []
            for n, cell in enumerate(cells):
                cell = cell.rstrip(_ENDINGS + "，、")
                if not cell:
                    continue
                name = header[n] if n < len(header) else ""
                if len(header) > 2 and n > 0 and name:
                    cell = f"{name}{p['colon']}{cell}"
                spoken.append(cell)
            if spoken:
                out.append(p["sep"].join(spoken) + p["end"])
    return out


def assert_speakable(text: str) -> None:
    """Fail when a reader would stumble: an Arabic digit, a URL or a Markdown mark."""
    problems = []
    if m := re.search(r"[0-9０-９]", text):
        problems.append(f"digit {m[0]!r}")
    if m := URL_RE.search(text):
        problems.append(f"URL {m[0]!r}")
    problems += [f"mark {mark!r}" for mark in speech_marks_left(text)]
    if problems:
        raise AssertionError(f"not speakable ({', '.join(problems)}): {text!r}")
