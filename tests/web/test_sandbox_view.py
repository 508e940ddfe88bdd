"""What a provider received is shown as its reader sees it, and never runs on the page."""

from __future__ import annotations

from gongkai.web.sandbox_view import telegram_html, wecom_markdown


def test_robot_markdown_is_rendered_with_wecom_colours_and_no_raw_html() -> None:
    html = str(
        wecom_markdown('**标题**\n<font color="comment">水务局</font>\n\n<script>x()</script>')
    )
    assert "<strong>标题</strong>" in html
    assert '<span class="wc-comment">水务局</span>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in str(wecom_markdown("[点我](javascript:alert(1))"))


def test_telegram_html_keeps_only_telegrams_tags_and_web_links() -> None:
    html = str(
        telegram_html(
            '<b>紧急</b> <a href="https://gk.test/p/1">全文</a> <img src=x onerror=y()>'
            ' <a href="javascript:y()">x</a>',
            "HTML",
        )
    )
    assert "<b>紧急</b>" in html
    assert '<a href="https://gk.test/p/1" rel="noopener">全文</a>' in html
    assert "<img" not in html and "&lt;img" in html
    assert 'href="javascript' not in html
    assert str(telegram_html("<b>plain</b>", None)) == "&lt;b&gt;plain&lt;/b&gt;"
