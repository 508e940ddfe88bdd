"""Quiet hours as villagers live them: no SMS and no loudspeaker at night unless the item is
urgent, while the village WeChat group is told at once (a group message wakes nobody).

The quiet window is set around the moment the test runs, so it holds whatever the clock says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from gongkai.sandbox import aliyun_sms, wecom_robot
from gongkai.sandbox.server import serve
from gongkai.storage.models import Delivery
from tests.support import fetch_deliveries, ingest, item, prepare_db, settings_for, workers_until

VILLAGE = "150627100201"
TEMPLATE = "${region}政务公开：${title}，详情见${link}"
DIRECTORY = f"""
accounts:
  sms:
    - {{name: county-sms, provider: aliyun, access_key_id: testid, access_key_secret: testsecret,
       sign_name: 伊金霍洛旗政务公开, template_code: SMS_000001, template_text: "{TEMPLATE}"}}
regions:
  - code: "150627"
    name: 伊金霍洛旗
    children:
      - code: "{VILLAGE}"
        name: 巴图塔嘎查
        targets:
          - {{channel: village_group, robot_key: robot-1}}
          - {{channel: loudspeaker, robot_key: robot-ls}}
          - {{channel: sms, account: county-sms, phones: ["13800000000"]}}
"""


def _night_around_now() -> str:
    """A quiet window from an hour ago to two hours ahead, in the service's time zone."""
    now = datetime.now(settings_for(Path(".")).tz)
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"


def _notice(item_id: str, channels: list[str], *, urgent: bool = False) -> dict[str, object]:
    return item(
        id=item_id,
        kind="notice",
        title="明日停水通知",
        doc_number=None,
        regions=[VILLAGE],
        channels=channels,
        urgent=urgent,
    )


def _by_channel(rows: list[Delivery]) -> dict[str, Delivery]:
    return {d.channel: d for d in rows}


async def test_at_night_sms_and_loudspeaker_wait_for_morning_and_the_group_does_not(
    tmp_path: Path, embedded_redis_url: str, redis: object
) -> None:
    robot_app, robot = wecom_robot.make_app({"robot-1", "robot-ls"})
    sms_app, sms = aliyun_sms.make_app(templates={"SMS_000001": TEMPLATE})
    async with serve(robot_app) as robot_url, serve(sms_app) as sms_url:
        s = settings_for(
            tmp_path,
            wecom_api_base=robot_url,
            aliyun_sms_endpoint=sms_url,
            quiet_hours=_night_around_now(),
        )
        await prepare_db(s, DIRECTORY)
        await ingest(
            s, embedded_redis_url, _notice("night-1", ["village_group", "loudspeaker", "sms"])
        )

        async def group_told() -> bool:
            rows, _ = await fetch_deliveries(s, "night-1")
            return _by_channel(rows)["village_group"].status == "delivered"

        await workers_until(s, embedded_redis_url, group_told)
        rows, _ = await fetch_deliveries(s, "night-1")
    held = _by_channel(rows)
    morning = datetime.now(s.tz) + timedelta(minutes=90)  # the window ends within 1.5-2 h
    for channel in ("sms", "loudspeaker"):
        assert held[channel].status == "queued", channel
        assert held[channel].not_before is not None
        assert held[channel].not_before.astimezone(s.tz) > morning, channel
    assert [m.key for m in robot.messages] == ["robot-1"]  # the committee's robot kept quiet
    assert sms.accepted_requests == 0


async def test_an_urgent_sms_goes_out_at_night(
    tmp_path: Path, embedded_redis_url: str, redis: object
) -> None:
    robot_app, _ = wecom_robot.make_app({"robot-1", "robot-ls"})
    sms_app, sms = aliyun_sms.make_app(templates={"SMS_000001": TEMPLATE})
    async with serve(robot_app) as robot_url, serve(sms_app) as sms_url:
        s = settings_for(
            tmp_path,
            wecom_api_base=robot_url,
            aliyun_sms_endpoint=sms_url,
            quiet_hours=_night_around_now(),
        )
        await prepare_db(s, DIRECTORY)
        await ingest(s, embedded_redis_url, _notice("night-2", ["sms"], urgent=True))

        async def sent() -> bool:
            rows, _ = await fetch_deliveries(s, "night-2")
            return _by_channel(rows)["sms"].status == "delivered"

        await workers_until(s, embedded_redis_url, sent)
    assert sms.accepted_requests == 1
