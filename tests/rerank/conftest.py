"""The re-ranker parity test reuses the embedders' reference pieces (tests/models: official_refs' fetch_image and
format_string, official_layouts' checkpoint writer), so that folder is importable from here too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
