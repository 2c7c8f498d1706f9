"""`umr recipes`: list the built-in recipes and their settings."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from umr.models.recipe import get_recipe, list_recipes

SHOWN = ("family", "attention", "pooling", "prompt", "default_model")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list recipes (GME, U-MARVEL, LamRA, MM-Embed, CLIP-SF, text) and settings",
                       description="Without a name: a table of every recipe. With a name: all its settings.")
    p.add_argument("name", nargs="?", help="show every setting of this recipe")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name:
        settings = get_recipe(args.name).to_dict()
        if args.json:
            print(json.dumps(settings, indent=2))
            return 0
        table = Table(title=f"recipe {args.name}", show_header=False)
        for key, value in settings.items():
            table.add_row(key, repr(value) if isinstance(value, str) else str(value))
        Console().print(table)
        return 0
    recipes = [get_recipe(n) for n in list_recipes()]
    if args.json:
        print(json.dumps([r.to_dict() for r in recipes], indent=2))
        return 0
    table = Table(title="umr recipes")
    for col in ("name", *SHOWN):
        table.add_column(col)
    for r in recipes:
        table.add_row(r.name, *(str(getattr(r, c)) for c in SHOWN))
    Console().print(table)
    return 0
