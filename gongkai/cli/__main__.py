"""``python -m gongkai.cli``: the same as the ``gongkai`` command."""

from gongkai.cli.main import main

main()
