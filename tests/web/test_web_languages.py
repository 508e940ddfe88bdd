"""The public page in Chinese, Mongolian and Uyghur, compared with golden files, and a new
language added with templates and labels only.

Set GONGKAI_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then read the
diff before committing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gongkai.channels import rendering
from gongkai.channels.base import TargetView
from gongkai.channels.web import CHANNEL as WEB
from gongkai.dispatch.planning import item_view
from gongkai.storage.models import Item
from tests.golden import assert_golden
from tests.support import item
from tests.web.web_items import MN, NNBSP, UG, publish, trilingual

FONT = Path(rendering.__file__).resolve().parent.parent / "static" / "fonts"


@pytest.mark.parametrize("lang", ["zh", "mn", "ug"])
async def test_page_matches_its_golden_file(gk, lang: str) -> None:
    item_id = await publish(gk, trilingual())
    r = await gk.get(f"/p/{item_id}" + ("" if lang == "zh" else f"?lang={lang}"))
    assert r.status == 200
    assert_golden(f"web_{lang}.html", await r.text())


@pytest.mark.parametrize("lang", ["zh", "mn", "ug"])
def test_web_channel_preview_matches_its_golden_file(lang: str) -> None:
    rendered = WEB.render(_view(trilingual()), _target(lang), "http://gongkai.test")
    [part] = rendered.parts
    assert part["kind"] == "page" and part["lang"] == lang and rendered.notes == []
    assert_golden(f"web_{lang}.txt", part["text"] + "\n")


async def test_mongolian_page_is_vertical_and_brings_its_own_font(gk) -> None:
    item_id = await publish(gk, trilingual())
    page = await (await gk.get(f"/p/{item_id}?lang=mn")).text()
    assert '<html lang="mn-Mong" dir="ltr">' in page
    assert '<article class="item vertical" lang="mn-Mong">' in page
    assert 'href="/static/vertical.css"' in page and 'href="/static/mongolian.css"' in page
    # words joined to their suffix by U+202F arrive whole
    assert MN["title"] in page and MN["body"] in page and page.count(NNBSP) >= 14
    assert "2026 ᠣᠨ\u202fᠤ 11 ᠰᠠᠷ᠎ᠠ\u202fᠶᠢᠨ 2" in page  # issued date in Mongolian
    css = await (await gk.get("/static/vertical.css")).text()
    assert "writing-mode: vertical-lr" in css
    font_css = await (await gk.get("/static/mongolian.css")).text()
    assert 'url("/static/fonts/NotoSansMongolian-Regular.ttf")' in font_css
    assert "//" not in font_css.split("url(")[1].split(")")[0].removeprefix('"/static')
    font = await gk.get("/static/fonts/NotoSansMongolian-Regular.ttf")
    assert font.status == 200
    data = await font.read()
    assert (
        data[:4] == b"\x00\x01\x00\x00"
        and data == (FONT / "NotoSansMongolian-Regular.ttf").read_bytes()
    )
    assert "SIL Open Font License" in (FONT / "OFL.txt").read_text(encoding="utf-8")


async def test_mongolian_page_without_translation_is_horizontal_chinese(gk) -> None:
    item_id = await publish(gk, item())
    page = await (await gk.get(f"/p/{item_id}?lang=mn")).text()
    assert "vertical.css" not in page and 'class="item"' in page
    assert "关于2026年城乡低保标准调整的通知" in page
    assert rendering.label("translation_missing", "mn") in page


async def test_uyghur_page_is_right_to_left_with_uyghur_words(gk) -> None:
    item_id = await publish(gk, trilingual())
    page = await (await gk.get(f"/p/{item_id}?lang=ug")).text()
    assert '<html lang="ug-Arab" dir="rtl">' in page and 'href="/static/uyghur.css"' in page
    assert UG["title"] in page and "ئېلان قىلغان ئورگان" in page  # "issuer"
    assert "2026-يىلى 11-ئاينىڭ 2-كۈنى" in page
    css = await (await gk.get("/static/uyghur.css")).text()
    assert '"Noto Naskh Arabic"' in css


def test_label_files_translate_every_chinese_label() -> None:
    labels = rendering.PACKAGE_TEMPLATES / "labels"
    chinese = yaml.safe_load((labels / "zh.yaml").read_text(encoding="utf-8"))
    for lang, script in (("mn", range(0x1800, 0x18B0)), ("ug", range(0x0600, 0x0700))):
        words = yaml.safe_load((labels / f"{lang}.yaml").read_text(encoding="utf-8"))
        assert set(words) == set(chinese), lang
        for key, value in words.items():
            if key in ("date_format", "colon"):
                continue
            assert any(ord(ch) in script for ch in value), (lang, key, value)
            assert not any("\u4e00" <= ch <= "\u9fff" for ch in value), (lang, key, value)


def test_web_preview_notes_a_missing_translation() -> None:
    rendered = WEB.render(_view(item()), _target("mn"), "http://gongkai.test/")
    assert rendered.notes == ["translation missing: mn"]
    [part] = rendered.parts
    assert part["url"] == "http://gongkai.test/p/ejhl-2026-0113?lang=mn"
    assert "关于2026年城乡低保标准调整的通知" in part["text"]
    assert rendering.label("translation_missing", "mn") in part["text"]
    assert rendered.meta["title"] == "关于2026年城乡低保标准调整的通知"


def test_cli_render_web_prints_the_page_in_the_language(tmp_path, monkeypatch) -> None:
    from gongkai.cli.main import app

    monkeypatch.setenv("GONGKAI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GONGKAI_PUBLIC_URL", "http://gongkai.test")
    path = tmp_path / "item.yaml"
    path.write_text(yaml.safe_dump(trilingual(), allow_unicode=True), encoding="utf-8")
    runner = CliRunner()
    for lang, title in (("mn", MN["title"]), ("ug", UG["title"]), ("zh", item()["title"])):
        result = runner.invoke(
            app,
            ["render", str(path), "--channel", "web", "--lang", lang, "--json"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out["meta"]["lang"] == lang and out["meta"]["title"] == title
        assert title in out["parts"][0]["text"]


@pytest.fixture
def korean_templates(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Korean (Yanbian) added the way a county would: files in the data dir, nothing else."""
    root = tmp_path / "overrides"
    (root / "templates" / "labels").mkdir(parents=True)
    (root / "templates" / "web" / "ko").mkdir(parents=True)
    (root / "templates" / "labels" / "ko.yaml").write_text(
        "site_name: 정무공개\nissuer: 발포기관\ndoc_number: 문서번호\nissued_at: 성문날짜\n"
        "published_at: 발포날짜\nkind_policy: 정책문건\nread_full: 전문 보기\n"
        "bulletin: 정보공시란\nscan_qr: QR코드를 스캔하여 전문 보기\n"
        'date_format: "%s년 %s월 %s일"\n'
        'colon: ": "\n',
        encoding="utf-8",
    )
    (root / "templates" / "web" / "ko" / "page.html.j2").write_text(
        '{% extends "web/zh/page.html.j2" %}\n'
        '{% block head %}<meta name="gongkai-lang" content="ko">{% endblock %}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("GONGKAI_DATA_DIR", str(root))
    rendering._labels.cache_clear()
    yield
    rendering._labels.cache_clear()


async def test_a_new_language_needs_only_templates_and_labels(gk, korean_templates) -> None:
    korean = {
        "title": "2026년 도시와 농촌 최저생활보장 기준 조정에 관한 통지",
        "summary": "매인 매월 60원 인상, 12월부터 시행.",
    }
    item_id = await publish(gk, item(translations={"ko": korean}))
    page = await (await gk.get(f"/p/{item_id}?lang=ko")).text()
    assert '<html lang="ko" dir="ltr">' in page
    assert '<meta name="gongkai-lang" content="ko">' in page
    assert korean["title"] in page and "정무공개" in page and "발포기관" in page
    assert "2026년 11월 2일" in page
    sheet = await (await gk.get(f"/p/{item_id}/print")).text()
    assert sheet.index('data-lang="ko"') < sheet.index('data-lang="zh"')
    assert "정보공시란" in sheet and "QR코드를 스캔하여 전문 보기" in sheet
    rendered = WEB.render(_view(item(translations={"ko": korean})), _target("ko"), "http://x")
    assert "정책문건 · 伊金霍洛旗人民政府办公室" in rendered.parts[0]["text"]


def _view(data: dict) -> object:  # type: ignore[type-arg]
    from gongkai.domain.items import parse_item

    parsed = parse_item(data)
    dumped = parsed.model_dump(mode="python")
    row = Item(
        **{k: v for k, v in dumped.items() if k not in ("catalog", "translations", "channels")},
        translations={
            lg: {k: v for k, v in tr.model_dump().items() if v}
            for lg, tr in parsed.translations.items()
        },
    )
    return item_view(row)


def _target(lang: str) -> TargetView:
    languages = (lang,) if lang == "zh" else (lang, "zh")
    return TargetView(None, "web", None, "", {}, languages, {})
