"""Suite-wide settings: offline, a private umr cache, one torch thread per xdist worker."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models built by "tiny:<recipe>" go to a cache private to this test run, never ~/.cache.
os.environ.setdefault("UMR_CACHE", tempfile.mkdtemp(prefix="umr-test-cache-"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)  # two workers on two cores: more threads would only fight
