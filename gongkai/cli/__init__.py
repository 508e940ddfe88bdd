"""The ``gongkai`` command line: the commands, the demo and the process wiring."""
