"""The provider sandbox: local simulators of every provider Gongkai talks to.

WeCom group robots, the WeChat official-account API (and its pushes to our callback), the
Telegram Bot API, Aliyun and Tencent Cloud SMS, each speaking the real protocol, checking
signatures and enforcing the real limits and error codes. The test suite runs against them,
and with ``GONGKAI_SANDBOX=on`` (``gongkai run --demo``) the web app mounts them under
``/sandbox/`` so a county can train, stage or evaluate without reaching a real provider.

It depends on nothing of Gongkai's but ``config`` and ``domain``; only the web app and the CLI
mount it.
"""
