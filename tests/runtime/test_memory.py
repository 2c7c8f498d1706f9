"""The memory estimate a large eval checks before it embeds: its figures, the error and the warning."""

from __future__ import annotations

import pytest

from umr.errors import UmrError
from umr.runtime.memory import GIB, check_memory, search_memory


def test_the_estimate_counts_vectors_by_dtype_and_the_rest_by_queries_and_candidates() -> None:
    full = search_memory(5_600_000, 190_000, 1536, "float32", k=51)
    half = search_memory(5_600_000, 190_000, 1536, "float16", k=51)
    assert full.vectors == 5_600_000 * 1536 * 4 and half.vectors == full.vectors // 2
    assert full.required == half.required
    # queries (1.09 GiB) + top-k lists (0.43 GiB) + blocks (~0.6 GiB) + columns (0.63 GiB): a few GiB, not the pool
    assert 2.5 * GIB < full.required < 4 * GIB


def test_too_little_memory_stops_with_the_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UMR_SKIP_MEMORY_CHECK", raising=False)
    plan = search_memory(5_600_000, 190_000, 3584, "float16")
    with pytest.raises(UmrError, match=r"umr eval needs .* GiB required .* has 2\.0 GiB available"):
        check_memory(plan, "umr eval", available=2 * GIB)
    with pytest.warns(UserWarning, match="do not fit in RAM"):
        check_memory(plan, "umr eval", available=plan.required + GIB)
    check_memory(plan, "umr eval", available=plan.required + plan.vectors)  # fits: silent
    monkeypatch.setenv("UMR_SKIP_MEMORY_CHECK", "1")
    check_memory(plan, "umr eval", available=1)
