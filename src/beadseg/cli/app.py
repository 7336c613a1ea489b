"""The ``beadseg`` command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from ..core.errors import BeadsegError, BeadsegWarning
from ..core.naming import DILUTION_RULE


class _PlaceholderHelp:
    """--help that shows placeholders (DATA, N, FOLDER), never Python types.

    typer 0.2x prints the type of an argument (``<path>``) even when it has a metavar, and
    ``<bool>`` after every flag; those cells are left empty here (older typer: no effect).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "argument" or getattr(param, "is_flag", False):
                param.display_type_rich = lambda ctx: None

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.display_type_rich = lambda ctx: None
        return option


class _Command(_PlaceholderHelp, TyperCommand):
    """A beadseg command (see :class:`_PlaceholderHelp`)."""


class _Group(_PlaceholderHelp, TyperGroup):
    """The ``beadseg`` group (see :class:`_PlaceholderHelp`)."""


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Microbead segmentation: analyze data, train, predict, evaluate, count, dilution curves. "
    "A command that writes takes --out/-o FOLDER; without it, it writes ./<input folder>-<command> "
    "in the current folder (./beadseg-<command> when it reads no input), and a folder holds the "
    "output of one command and one set of settings (--overwrite replaces it).",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"beadseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    max_image_pixels: str | None = typer.Option(
        None,
        "--max-image-pixels",
        metavar="N",
        help="Refuse image files above N pixels before decoding them (default 268435456 = 16K x 16K: "
        "a small file can inflate to gigabytes). Put it before the command.",
    ),
) -> None:
    """beadseg: microbead segmentation toolkit."""
    if max_image_pixels is not None:
        import os

        from ..core.images import MAX_PIXELS_ENV
        from ..core.images import max_image_pixels as checked

        # the process's limit (the CLI owns the process): every reader of this command sees it
        os.environ[MAX_PIXELS_ENV] = str(checked(max_image_pixels.replace("_", "")))


def _examples(*lines: str) -> str:
    """The epilog of a command's --help: its example command lines, one per line."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def command(name: str | None = None, *, examples: tuple[str, ...], **kwargs):
    """``@app.command`` with the examples shown under the command's --help."""
    return app.command(name, cls=_Command, epilog=_examples(*examples), **kwargs)


def out_option(command_name: str, input_name: str | None, help_text: str = "Output folder."):
    """``--out/-o FOLDER``, optional: the default (shown) is ``./<input folder name>-<command>``,
    :func:`beadseg.outputs.folder.default_output`."""
    where = f"./<{input_name} folder>-{command_name}" if input_name else f"./beadseg-{command_name}"
    return typer.Option(None, "--out", "-o", metavar="FOLDER", show_default=where, help=help_text)


OVERWRITE = typer.Option(
    False,
    "--overwrite",
    help="Replace what --out holds (beadseg output of another command or other settings).",
)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.")
DEVICE_HELP = "auto, cpu, cuda, cuda:N, mps"
CONFIG_HELP = "YAML config: one schema for every command (see `beadseg train --print-config`)."
SET_HELP = "Override a config key, e.g. --set optim.lr=1e-3 or --set predict.overlap=128 (repeatable)."
DATA_HELP = "Folder with images/ and masks/ (config: data.path)."
DILUTION_HELP = f"Dilution: {DILUTION_RULE}."


def config_option():
    return typer.Option(None, "--config", metavar="FILE", help=CONFIG_HELP)


def set_option():
    return typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP)


def resolve_config(config: Path | None, sets: list[str] | None, flags: dict | None = None):
    """The :class:`~beadseg.core.config.Config` of a command: defaults, then ``--config``, then
    ``--set``, then the command's own flags (only those given: a flag left out keeps the
    config's value). Flags are keyed by their config key, e.g. ``"predict.tile_size"``."""
    from ..core.config import load_config, parse_overrides

    options = {k: str(v) if isinstance(v, Path) else v for k, v in (flags or {}).items() if v is not None}
    return load_config(config, parse_overrides(sets, options))


def echo_lines(lines) -> None:
    for line in lines:
        typer.echo(line)


def _warning_printer(fallback):
    """A ``warnings.showwarning`` that prints beadseg's warnings as one plain line and hands
    every other warning to ``fallback`` (the function it replaces)."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, BeadsegWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def _usage_line(exc) -> str:
    """A command-line usage error (bad option value, missing argument) as one line."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {text}{where}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2 (no traceback);
    so do command-line usage errors (typer's own multi-line panel is not used)."""
    from typer.exceptions import TyperException

    previous = warnings.showwarning
    warnings.showwarning = _warning_printer(previous)  # for this call only; restored below
    try:
        code = app(args=argv, prog_name="beadseg", standalone_mode=False)  # --help: 0
    except BeadsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as exc:  # an optional package a path was not guarded for
        from ..core.extras import EXTRAS, missing_message

        known = {m.split(".")[0]: m for m in EXTRAS}
        module = known.get((exc.name or "").split(".")[0])
        if module is None:
            raise
        print(f"error: {missing_message(module, 'this command')}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        print(
            "error: out of memory; give smaller images or settings (e.g. --set batch_size=1)", file=sys.stderr
        )
        sys.exit(1)
    except OSError as exc:
        import errno

        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        fix = (
            "free some space on that disk, or give --out on another one"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else "give --out in a folder you can write"
        )
        print(f"error: cannot write {exc.filename or 'the output'}: {exc.strerror}; {fix}", file=sys.stderr)
        sys.exit(2)
    except TyperException as exc:  # usage errors; Abort (Ctrl-D at a prompt) has no message
        if type(exc).__name__ == "NoArgsIsHelpError":  # `beadseg` alone: the help
            print(exc.format_message())
            sys.exit(0)
        print(_usage_line(exc) if hasattr(exc, "format_message") else "aborted", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 1))
    finally:
        warnings.showwarning = previous
    sys.exit(code if isinstance(code, int) else 0)  # as typer's standalone mode does
