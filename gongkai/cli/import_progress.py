"""How ``gongkai directory import`` shows its progress and what it did.

A county's file takes a second or two; on a terminal a bar per phase (connecting to the
database, parsing, validating, writing) shows it is moving. Piped into a log or a script, a bar
would be noise, so each phase is one plain line with its time. Both go to standard error:
standard output keeps the summary, whose last line scripts have long read (the targets').
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from gongkai.storage.directory import ImportReport


class _Rows(ProgressColumn):
    """``12000/20101`` for a phase that counts rows; nothing for one that cannot."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("rows"):
            return Text("")
        return Text(f"{int(task.completed)}/{int(task.total or 0)}", style="progress.download")


class _Seconds(ProgressColumn):
    """The phase's time to the hundredth: phases take a fraction of a second each."""

    def render(self, task: Task) -> Text:
        took = task.finished_time if task.finished else task.elapsed
        return Text(f"{took or 0:.2f} s", style="progress.elapsed")


class BarProgress:
    """A rich progress bar per phase; a finished phase stays on the screen, ticked."""

    def __init__(self, console: Console) -> None:
        self._bars = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description:<11}"),
            BarColumn(),
            _Rows(),
            _Seconds(),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> BarProgress:
        self._bars.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self._finish()
        self._bars.stop()

    def _finish(self) -> None:
        if self._task is not None:
            task = self._bars.tasks[self._task]
            self._bars.update(self._task, total=task.total or 1, completed=task.total or 1)

    def phase(self, name: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._bars.add_task(name, total=total, rows=total is not None)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, steps)


class LineProgress:
    """One line per phase when it ends: ``parsing: 0.41 s``."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._name: str | None = None
        self._total: int | None = None
        self._started = 0.0

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self._finish()

    def _finish(self) -> None:
        if self._name is None:
            return
        rows = f" ({self._total} rows)" if self._total else ""
        took = time.perf_counter() - self._started
        self._console.print(f"{self._name}{rows}: {took:.2f} s", highlight=False)
        self._name = None

    def phase(self, name: str, total: int | None = None) -> None:
        self._finish()
        self._name, self._total, self._started = name, total, time.perf_counter()

    def advance(self, steps: int = 1) -> None:
        pass


def import_progress(console: Console) -> BarProgress | LineProgress:
    """Bars on a terminal, plain lines otherwise."""
    return BarProgress(console) if console.is_terminal else LineProgress(console)


def summary_lines(report: ImportReport) -> list[str]:
    """Per kind: what the file added, changed and left alone, and what the database holds that
    the file does not list (an import never removes: deliveries and followers refer to it)."""
    lines = ["the file of the last import, unchanged: nothing to do"] if report.same_file else []
    for kind, c in report.kinds().items():
        line = f"{kind}: {c.added} added, {c.changed} changed, {c.unchanged} unchanged"
        if c.deactivated:
            by = " by that import" if report.same_file else ""
            line += f"; {c.not_in_file} not in the file, {c.deactivated} of them deactivated{by}"
        elif c.not_in_file:
            line += f"; {c.not_in_file} not in the file, kept (an import removes nothing)"
        lines.append(line)
    return lines
