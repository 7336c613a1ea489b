"""A progress bar for commands that take more than a moment (rich, on stderr's terminal,
removed when done)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(enabled: bool, total: int, description: str) -> Iterator[Callable[[], None]]:
    """A transient rich progress bar of ``total`` steps (or nothing); yields the function that
    advances it by one."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task(description, total=total)
    with bar:
        yield lambda: bar.update(task, advance=1)


@contextmanager
def status(enabled: bool, text: str) -> Iterator[None]:
    """A spinner with ``text`` on stderr while a long single step runs (or nothing)."""
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield
