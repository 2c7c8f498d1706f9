"""The issue-6 ablation table; the same as `umr ablate` (see `umr ablate --help`)."""

import sys

from umr.cli import main

sys.exit(main(["ablate", *sys.argv[1:]]))
