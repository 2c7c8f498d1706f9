"""`umr` command line: a thin layer over the library.

Each verb lives in its own module `umr/cli/cmd_<verb>.py` that defines
    register(subparsers) -> None    # adds its parser and sets `func=run`
so verbs are added without touching this file. umr's own errors about the user's input (`umr.errors.UmrError`:
items, files, settings, model names), a missing or existing path, a file that is a folder (or the other way round),
any other OSError (a full disk, a read-only folder: path and reason) and a YAML syntax error are printed as one
clear line and exit code 2; anything else — a ValueError from deep in a library included — is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from umr import __version__
from umr.errors import UmrError, os_error_line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="umr",
        description="Universal multimodal retrieval: embed, index, search, train and evaluate MLLM embedders "
        "(GME, U-MARVEL, LamRA, MM-Embed), CLIP-SF and text baselines.",
        epilog="Run `umr <command> --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"umr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    package = importlib.import_module("umr.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"umr.cli.{info.name}").register(sub)
    return parser


class _ProgressLines(logging.Handler):
    """The library's progress lines (`umr.train` INFO logs) as plain stdout lines, as print wrote them; sys.stdout
    is looked up per line, so a replaced stdout (a test's capture) gets them."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), flush=True)


def _show_progress() -> None:
    logger = logging.getLogger("umr.train")
    if not any(isinstance(h, _ProgressLines) for h in logger.handlers):
        logger.addHandler(_ProgressLines())
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    _show_progress()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (UmrError, FileNotFoundError, FileExistsError) as exc:
        print(f"umr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        what = {IsADirectoryError: "is a directory; give a file", NotADirectoryError: "is not a directory",
                PermissionError: "permission denied"}[type(exc)]
        print(f"umr {args.command}: error: {exc.filename or exc}: {what}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only folder: the path and the reason, not a traceback
        print(f"umr {args.command}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):  # yaml.YAMLError, without importing yaml for every verb
            print(f"umr {args.command}: error: {_yaml_problem(args, exc)}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print(f"umr {args.command}: interrupted; finished work is kept on disk", file=sys.stderr)
        return 130


def _yaml_problem(args: argparse.Namespace, exc: Exception) -> str:
    """One line for a YAML syntax error: the file (the verb's --config), the line and column, the problem."""
    mark = getattr(exc, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    source = getattr(args, "config", None) or (mark.name if mark is not None else "YAML input")
    return f"{source}: not valid YAML ({problem}{where})"


if __name__ == "__main__":
    sys.exit(main())
