"""``gongkai directory import``: the county's accounts, regions and targets from its file.

Registered on the main CLI by importing this module (``cli.main()`` does).
"""

from __future__ import annotations

from pathlib import Path

import typer

from gongkai.cli.main import app, database, err, fail, out, read_file, run, settings

directory_app = typer.Typer(help="Accounts, regions and targets.", no_args_is_help=True)
app.add_typer(directory_app, name="directory")


@directory_app.command("import")
def directory_import(
    file: Path,
    deactivate_missing: bool = typer.Option(
        False,
        "--deactivate-missing",
        help="deactivate the targets of the file's regions it no longer lists "
        "(a replaced robot key, a rewritten phone list); listed again, they are active again",
    ),
) -> None:
    """Load accounts, regions and targets; importing the same file again changes nothing.

    Progress (connecting, parsing, validating, writing) goes to standard error: bars on a
    terminal, a line per phase otherwise; the summary, a line per kind, to standard output."""
    from gongkai.cli.import_progress import import_progress, summary_lines
    from gongkai.storage.crypto import Sealer
    from gongkai.storage.directory import DirectoryError, import_directory_file

    s = settings()
    text = read_file(file)

    async def go():  # type: ignore[no-untyped-def]
        progress.phase("connecting")  # the database, its migrations checked
        async with database(s) as maker, maker() as session:
            sealer = Sealer(s.resolved_secret_key())
            return await import_directory_file(
                session, text, sealer, progress=progress, deactivate_missing=deactivate_missing
            )

    try:
        with import_progress(err) as progress:
            report = run(go)
    except DirectoryError as exc:
        fail(f"{file}: {exc}")
    for line in summary_lines(report):
        out.print(line, highlight=False, soft_wrap=True)
