"""What a channel is: declarations, a pure render step and an async send step.

A channel never sleeps and never decides about retries. It raises ``TransientError`` (with the
provider's retry-after when there is one) or ``PermanentError``; the dispatcher decides what
happens next. Rendering happens once, at planning time, and the result is stored on the
delivery row exactly as it will be sent, so an admin sees what residents saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from gongkai.domain.links import SOURCE_LANGUAGE, link_key, page_url, short_url

if TYPE_CHECKING:
    import aiohttp
    from redis.asyncio import Redis

    from gongkai.config import Settings


@dataclass(frozen=True)
class RateLimit:
    """One limit a message counts against, e.g. ``RateLimit("20/minute", "wecom:<key hash>")``.
    Channels declare them; the dispatcher's limiter enforces them across workers."""

    rate: str
    key: str


class Limiter(Protocol):
    """What a send may ask of the worker's shared limits (``dispatch.ratelimit``)."""

    enabled: bool

    async def acquire(self, wanted: list[RateLimit]) -> float | None: ...


class ChannelError(Exception):
    """Base of the two outcomes a send can fail with."""


class TransientError(ChannelError):
    """Try again later: timeouts, 5xx, the provider's rate-limit codes."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UncertainError(ChannelError):
    """The request went out and no answer came back, so the provider may have sent it.

    Raised by channels whose provider does not deduplicate (SMS): the part is not sent again
    on its own, because a resident would get it twice; a person checks the provider's records
    and retries the delivery from the console when it never arrived.
    """


class PermanentError(ChannelError):
    """Retrying cannot help: a bad key, a rejected template, a bot removed from a group."""

    def __init__(self, message: str, deactivate_target: bool = False) -> None:
        super().__init__(message)
        self.deactivate_target = deactivate_target


@dataclass(frozen=True)
class ItemView:
    """The item as renderers see it: plain data, no database session."""

    id: str
    kind: str
    title: str
    summary: str
    body: str  # already the public (possibly redacted) body, Markdown
    doc_number: str | None
    issuer: str | None
    issued_at: date
    published_at: datetime | None
    domain: str
    urgent: bool
    catalog: dict[str, Any]
    translations: dict[str, dict[str, str]]
    interprets: str | None = None
    interpretation_ids: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # per-channel wishes of the item
    # The item's short-link codes by ``links.link_key(channel, lang)``, drawn at planning time;
    # None in a preview of an item not yet published (no codes exist yet).
    short_codes: dict[str, str] | None = None

    def page_link(
        self, public_url: str, channel: str, lang: str | None = None, *, pin_lang: bool = False
    ) -> str:
        """The link a channel's message hands out: the short link counting this channel's
        opens when the item has one for ``lang``, else the page's own address."""
        code = (self.short_codes or {}).get(link_key(channel, lang or SOURCE_LANGUAGE))
        if code:
            return short_url(public_url, code)
        return page_url(public_url, self.id, lang, pin_lang=pin_lang)

    def languages(self) -> list[str]:
        """The languages the item can be read in: the source and every titled translation."""
        return [SOURCE_LANGUAGE, *(k for k in self.translations if self.has_language(k))]

    def text(self, lang: str, field_name: str) -> str | None:
        """The field in ``lang``; None when that translation is missing."""
        if lang == "zh":
            return getattr(self, field_name)
        value = self.translations.get(lang, {}).get(field_name)
        return value or None

    def has_language(self, lang: str) -> bool:
        return lang == "zh" or bool(self.translations.get(lang, {}).get("title"))


@dataclass(slots=True)
class TargetView:
    """A target with its address opened; only render and send see the plain address.

    Not frozen: a worker opens one per delivery, and a frozen dataclass sets each field through
    ``object.__setattr__``. Nothing changes one once it is built.
    """

    id: int | None
    channel: str
    region_code: str | None
    region_name: str
    region_names: dict[str, str]
    languages: tuple[str, ...]
    address: dict[str, Any]
    account: dict[str, Any] | None = None  # config + opened secrets of the account
    account_name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def region_label(self, lang: str) -> str:
        return self.region_names.get(lang) or self.region_name


@dataclass
class Rendered:
    """What planning stores on the delivery: the parts, sent in order, one message each."""

    parts: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # Set when the message cannot be sent as rendered (an SMS variable over the provider's
    # limit): planning stores the delivery as dead with this as its error, nothing is sent.
    refused: str | None = None

    def as_payload(self) -> dict[str, Any]:
        return {"parts": self.parts, "meta": self.meta}


@dataclass
class SentPart:
    """A part the provider accepted.

    ``pending`` means accepted but not yet final (a WeChat article in review): the delivery
    stays ``sending`` until the provider's verdict arrives through a callback or a poll.
    """

    provider_message_id: str | None = None
    pending: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendContext:
    """Everything a send step may use; built by the worker per delivery."""

    http: aiohttp.ClientSession
    settings: Settings
    redis: Redis | None
    target: TargetView
    item_id: str
    delivery_id: int
    part_index: int
    limiter: Limiter | None = None
    state: dict[str, Any] = field(default_factory=dict)  # shared across parts of one delivery


class Channel:
    """A channel: a small class of declarations plus render and send (after Apprise)."""

    name: ClassVar[str]
    title: ClassVar[str]  # human name for the console
    quiet_hours_apply: ClassVar[bool] = False
    # one delivery per item rather than per target (the web page, the official account)
    targetless: ClassVar[bool] = False
    can_recall: ClassVar[bool] = False
    # reaches the item when the target's region is an ancestor of the item's region too (a
    # county-wide official account carries a village's notice)
    broadcast: ClassVar[bool] = False
    # After a worker died mid-send nobody knows whether the provider took the part. Resending
    # is right for most channels; SMS would bill and annoy twice, so it asks a person instead.
    resend_when_uncertain: ClassVar[bool] = True

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        raise NotImplementedError

    def rate_limits(self, target: TargetView, part: dict[str, Any]) -> list[RateLimit]:
        return []

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        raise NotImplementedError

    async def poll(self, provider_message_id: str, ctx: SendContext) -> SentPart | None:
        """For a part the provider accepted as pending: None while still pending, a final
        SentPart once done; raise PermanentError when the provider rejected it."""
        return None

    async def was_sent(self, part: dict[str, Any], ctx: SendContext) -> SentPart | None:
        """For a part a stopped worker may have had on the wire: the provider's record of it
        when the provider can be asked, else None (then nobody can tell, and nothing is sent)."""
        return None

    async def recall(self, provider_message_ids: list[str], ctx: SendContext) -> str:
        """Delete what was sent; return a short note for the log. Raise when impossible."""
        raise PermanentError(f"cannot be recalled on the {self.name} channel")
