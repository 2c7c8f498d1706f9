"""The offline benchmark: a procedurally generated world of shapes, written in M-BEIR's exact format.

    from umr.data.world import build_world
    build_world("data/world", size="tiny", seed=0)

See design.md §4 and `umr world --help`.
"""

from umr.data.world.writer import DATASETS, SIZES, build_world

__all__ = ["DATASETS", "SIZES", "build_world"]
