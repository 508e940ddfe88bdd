"""Settings from the environment (prefix ``GONGKAI_``) and an optional ``gongkai.toml``.

The names are the outside contract (``shared/spec/interfaces.md``); every provider base URL is a
setting so a private gateway, a proxy or a test double can stand in.
"""

from __future__ import annotations

import secrets
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GONGKAI_", toml_file="gongkai.toml", extra="ignore"
    )

    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    secret_key: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    telegram_api_base: str = "https://api.telegram.org"
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com"
    tencent_sms_endpoint: str = "https://sms.tencentcloudapi.com"
    quiet_hours: str = "22:00-07:00"
    timezone: str = "Asia/Shanghai"
    # Not in the contract's table but needed by operators; safe defaults.
    # Transient failures are retried with backoff until a deadline counted from the first
    # failure, not a number of tries: a provider down for half an hour loses nothing.
    retry_deadline_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    urgent_retry_deadline_hours: float = Field(default=2.0, gt=0, le=24 * 30)
    # 0: no cap on the count (the deadline decides); n: also give up after n transient failures
    max_attempts: int = Field(default=0, ge=0)
    retry_base_seconds: float = Field(default=5.0, ge=0)
    retry_max_seconds: float = Field(default=300.0, ge=0)
    # A worker holds a claimed row this long and renews it while working; another worker takes
    # the row over once the lease has run out.
    lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    # How often each worker looks for rows that should be moving but are not (lost jobs,
    # expired leases, verdict polls overdue).
    reconcile_seconds: float = Field(default=20.0, ge=0.2, le=3600)
    rate_limits_enabled: bool = True
    worker_concurrency: int = Field(default=100, ge=1, le=1000)
    # a provider request that has not answered by then is given up (and classed by the channel)
    http_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    tts_engine: str = "espeak"
    holidays_file: Path | None = None
    hotline: str = "12345"
    # reverse proxies whose X-Forwarded-For is believed (the console's login limit is per address)
    trusted_proxies: str = "127.0.0.1,::1"
    log_level: str = "INFO"
    # hosts a WeChat article's body images may be fetched from (to upload them to WeChat);
    # empty: the public site's own host only. A worker must not fetch whatever an item names.
    image_hosts: str = ""
    # The provider sandbox (gongkai/sandbox/): "on" mounts the simulators under /sandbox/ of the
    # web app and points every provider base URL at them, whatever was configured, so nothing
    # reaches a real provider; "demo" (gongkai run --demo) is "on" with the sandbox page open
    # to anyone who can reach the server. Off by default.
    sandbox: Literal["off", "on", "demo"] = "off"
    # applications for disclosure: the office that signs reply letters; how many applications
    # for the same information within a year suggest publishing it proactively
    applications_agency: str = "本机关"
    applications_repeat_threshold: int = Field(default=3, ge=2, le=1000)
    applications_sms_template: str = ""  # the provider-approved template for applicants' notices
    # reminders to the handler: from this many working days before an answer's due day, and on
    # it; by SMS (this approved template, ${number} ${status}) to the handlers listed as
    # "name=mobile,name=mobile" (console user names as in an application's 承办人)
    applications_remind_days: int = Field(default=3, ge=0, le=20)
    applications_remind_sms_template: str = ""
    applications_remind_phones: str = ""
    # an applicant's notice refused temporarily is tried again after these many seconds, one
    # try per entry (later if the provider asks), then left for a person to post
    applications_notice_retry_seconds: str = "60,300,900,3600,14400"

    def image_host_allowed(self, host: str) -> bool:
        allowed = {h.strip().lower() for h in self.image_hosts.split(",") if h.strip()}
        if not allowed:
            allowed = {(urlsplit(self.public_url).hostname or "").lower()}
        return host.lower() in allowed

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("sandbox", mode="before")
    @classmethod
    def _sandbox_words(cls, value: object) -> object:
        """``on``/``off`` as the README writes them, and the usual spellings of a switch."""
        word = str(value).strip().lower()
        if word in ("1", "true", "yes", "on"):
            return "on"
        if word in ("0", "false", "no", "off", ""):
            return "off"
        return word

    @model_validator(mode="after")
    def _providers_in_the_sandbox(self) -> Settings:
        """With the sandbox on, every provider base URL is the sandbox's: a real provider's
        address left in a configuration (or set on purpose) is replaced, never used."""
        if self.sandbox_on:
            base = self.sandbox_url
            self.wechat_api_base = f"{base}/wechat"
            self.wecom_api_base = f"{base}/wecom"
            self.telegram_api_base = f"{base}/telegram"
            self.aliyun_sms_endpoint = f"{base}/aliyun/"
            self.tencent_sms_endpoint = f"{base}/tencent/"
        return self

    @property
    def sandbox_on(self) -> bool:
        return self.sandbox != "off"

    @property
    def sandbox_url(self) -> str:
        """Where this server's sandbox answers, as the worker reaches it: the listening address
        on loopback (a wildcard address is reached through 127.0.0.1)."""
        host = self.host if self.host not in ("", "0.0.0.0", "::", "*") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/sandbox"

    @field_validator("applications_notice_retry_seconds")
    @classmethod
    def _notice_retries(cls, value: str) -> str:
        _retry_seconds(value)
        return value

    @property
    def notice_retry_delays(self) -> tuple[float, ...]:
        """The wait before each retry of an applicant's notice, in seconds."""
        return _retry_seconds(self.applications_notice_retry_seconds)

    @field_validator("quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str) -> str:
        if value.strip() in ("", "off", "none"):
            return ""
        parse_quiet_hours(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet_window(self) -> tuple[time, time] | None:
        return parse_quiet_hours(self.quiet_hours) if self.quiet_hours else None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gongkai.sqlite3').resolve()}"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def resolved_secret_key(self) -> str:
        """The key that encrypts phone numbers and secrets; generated once into the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.ensure_data_dir() / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def parse_quiet_hours(value: str) -> tuple[time, time]:
    try:
        start_s, end_s = value.split("-")
        return time.fromisoformat(start_s.strip()), time.fromisoformat(end_s.strip())
    except ValueError as exc:
        raise ValueError(f"quiet hours must look like 22:00-07:00, got {value!r}") from exc


def _retry_seconds(value: str) -> tuple[float, ...]:
    """Seconds as ``60,300,900``: each a number ≥ 0, at most 20 of them."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    try:
        seconds = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise ValueError("expected seconds separated by commas, e.g. 60,300,900") from exc
    if len(seconds) > 20 or any(not 0 <= s <= 7 * 86400 for s in seconds):
        raise ValueError("at most 20 delays, each between 0 and 604800 seconds")
    return seconds
