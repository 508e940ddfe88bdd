"""Markdown, links and masks turned into plain lines a reader can say, in any language.

Bodies arrive as Markdown; a loudspeaker has no bold and no table. The Chinese number rules live
in ``spoken.py``; this module only removes what is written-only, and must keep U+202F (the
Mongolian suffix joiner) intact, so it never treats every Unicode space as a space. Markdown is
parsed by markdown-it only; the regexes left here read what is not Markdown: masks, URLs,
numbering typed the Chinese way (1．), and bold CommonMark declines beside CJK punctuation.
"""

from __future__ import annotations

import re

from markdown_it.token import Token

from gongkai.channels.html_text import BODY_MARKDOWN, close_of, html_to_plain, table_cells

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
_UNPARSED_STRONG = re.compile(rf"(\*\*|__){_NO_EMPHASIS_START}([^\n]*?\S)\1")
_FOOTNOTE_REF = re.compile(r"\[\^[^\]]+\]")  # [^1]: CommonMark has no footnotes, nor a reader
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def punctuation(lang: str) -> dict[str, str]:
    return _PUNCT.get(lang, _DEFAULT_PUNCT)


def speech_marks_left(text: str) -> list[str]:
    return [mark for mark in SPEECH_MARKS if mark in text]


def strip_markdown(text: str, *, url_words: str = "", lang: str = "zh") -> str:
    """Plain lines: headers, list items and table rows become sentences; links their text.

    The Markdown is read by markdown-it, as the chat channels read it (``BODY_MARKDOWN``),
    and its tokens walked to text. A URL is dropped; after
    words such as 详见 or 网址 it becomes ``url_words`` (where the listener can look instead).
    Masked characters are left as ``MASK`` for the caller.
    """
    p = punctuation(lang)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _masks_with_digits(text)
    tokens = BODY_MARKDOWN.parse(text)
    out = [_spoken_line(line, url_words) for line in _blocks(tokens, 0, len(tokens), p)]
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


# --- Markdown tokens → lines -----------------------------------------------------------------


def _blocks(tokens: list[Token], start: int, end: int, p: dict[str, str]) -> list[str]:
    """One entry per line a reader says; "" where a rule or a block boundary falls."""
    out: list[str] = []
    i = start
    while i < end:
        tok = tokens[i]
        close = close_of(tokens, i) if tok.nesting == 1 else i
        kind = tok.type
        if kind == "heading_open":
            out.append(_close(_inline(tokens[i + 1].children or []).replace("\n", " "), p))
        elif kind == "paragraph_open":
            out += [
                _typed_item(line, p) for line in _inline(tokens[i + 1].children or []).split("\n")
            ]
        elif kind == "list_item_open":
            out += _list_item(tokens, i, close, p)
        elif kind in ("blockquote_open", "bullet_list_open", "ordered_list_open"):
            out += _blocks(tokens, i + 1, close, p)
        elif kind == "table_open":
            out += _table(tokens, i, close, p)
        elif kind in ("fence", "code_block"):
            out += tok.content.rstrip("\n").split("\n")
        elif kind == "html_block":
            out += [_typed_item(line, p) for line in html_to_plain(tok.content).split("\n")]
        elif kind == "hr":
            out.append("")
        i = close + 1
    return out


def _list_item(tokens: list[Token], start: int, end: int, p: dict[str, str]) -> list[str]:
    """An item is said as a sentence; a numbered one keeps its number: "1、……。"."""
    lines = _blocks(tokens, start + 1, end, p)
    if not lines:
        return []
    number = tokens[start].info
    first = f"{number}{p['ordinal']}{lines[0].lstrip()}" if number else lines[0]
    return [_close(first, p), *lines[1:]]


def _typed_item(line: str, p: dict[str, str]) -> str:
    """Items typed the way Chinese documents number them, which Markdown does not read as a
    list: "1．各单位", "2.各单位" (no space), "• 各单位"."""
    if m := re.match(r"^[ \t]*[-*+•][ \t]+(.*)$", line):
        return _close(m[1], p)
    if m := re.match(r"^[ \t]*(\d{1,2})[.．)][ \t]*(?=\D)(.*)$", line):
        return _close(m[1] + p["ordinal"] + m[2], p)
    return line


def _table(tokens: list[Token], start: int, end: int, p: dict[str, str]) -> list[str]:
    """A table read row by row: "项目，数值。", or "名称，列名：值，列名：值。" when wider."""
    header, rows = table_cells(
        tokens, start, end, lambda t: _inline(t.children or []).replace("\n", " ").strip(" \t")
    )
    out = []
    for cells in rows:
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


def _inline(children: list[Token]) -> str:
    """The words of a line: marks, link targets and tags go; struck-out text is not read."""
    out: list[str] = []
    struck = 0  # inside ~~…~~ or a footnote mark [^1] (a link when its note is defined)
    for n, tok in enumerate(children):
        kind = tok.type
        if kind in ("s_open", "s_close"):
            struck += 1 if kind == "s_open" else -1
        elif kind == "link_open" and children[n + 1 :][:1] and _is_note(children[n + 1]):
            struck += 1
        elif kind == "link_close" and struck and _is_note(children[n - 1]):
            struck -= 1
        elif struck:
            continue
        elif kind == "text":
            out.append(_FOOTNOTE_REF.sub("", tok.content))
        elif kind == "code_inline":
            out.append(tok.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "image":
            out.append("".join(c.content for c in tok.children or []))
        elif kind == "html_inline" and _BR.fullmatch(tok.content.strip()):
            out.append("\n")
    return "".join(out)


def _is_note(tok: Token) -> bool:
    return tok.type == "text" and tok.content.startswith("^")


def _spoken_line(line: str, url_words: str) -> str:
    # CommonMark does not take ** beside CJK punctuation (提高**“60元”**) for emphasis; the
    # pair it leaves is still the author's bold, and must not be read as a masked name
    line = _UNPARSED_STRONG.sub(r"\2", line)
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
