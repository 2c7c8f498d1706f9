"""`umr` command line: a thin layer over the library.

Each verb lives in its own module `umr/cli/cmd_<verb>.py` that defines
    register(subparsers) -> None    # adds its parser and sets `func=run`
so verbs are added without touching this file. Library errors (ValueError, FileNotFoundError) are printed as
one clear line and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from umr import __version__


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"umr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"umr {args.command}: interrupted; finished work is kept on disk", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
