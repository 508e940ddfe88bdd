"""The fixed vocabularies of 政务公开 (domain.md)."""

from __future__ import annotations

# The 26 pilot domains (试点领域), seed 004; 其他 for anything outside them.
DOMAINS: tuple[str, ...] = (
    "重大建设项目",
    "公共资源交易",
    "义务教育",
    "户籍管理",
    "社会救助",
    "养老服务",
    "公共法律服务",
    "财政预决算",
    "就业创业",
    "社会保险",
    "国土空间规划",
    "征地补偿",
    "环境保护",
    "国有土地上房屋征收",
    "保障性住房",
    "农村危房改造",
    "城市综合执法",
    "市政服务",
    "涉农补贴",
    "公共文化服务",
    "医疗卫生",
    "安全生产",
    "救灾",
    "食品药品监管",
    "扶贫",
    "税收管理",
)
OTHER_DOMAIN = "其他"
DOMAIN_ALIASES = {"城乡规划": "国土空间规划"}

KINDS = ("policy", "interpretation", "notice")
KIND_LABELS = {"policy": "政策文件", "interpretation": "政策解读", "notice": "通知公告"}

DISCLOSURE = ("public", "public_redacted", "on_request", "not_public")
DISCLOSURE_LABELS = {
    "public": "此件公开发布",
    "public_redacted": "此件删减后公开",
    "on_request": "此件依申请公开",
    "not_public": "此件不公开",
}
PUSHABLE_DISCLOSURE = ("public", "public_redacted")

# The channels by their fixed names (the outside contract lists them); each is one module under
# gongkai/channels/ (channels/registry.py).
CHANNEL_NAMES = ("web", "wechat_mp", "village_group", "sms", "loudspeaker", "telegram")
