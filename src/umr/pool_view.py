"""A candidate pool ready to search: its columns (`umr.data.pool_columns`) and one copy of its vectors.

    view = PoolView(cols, store.embeddings())      # the store's memory-mapped matrix: no copy is made
    scores, rows = view.search(query_vectors, k=10)  # float64 [n, k] and int64 [n, k] pool rows, best first

The vectors stay where the embedding store keeps them (a memory map of `embeddings.npy`, float32 or float16);
sub-pools (a local pool inside the global one, the global pool's candidates of one modality) are row selections
of the same matrix, never copies. Search is exact: `umr.index.block_search.block_topk` streams the matrix in
blocks on the chosen device, then the rows it returns are re-scored exactly.

Ties (the project-wide rule, docs/mbeir.md): among equal scores the candidate earlier in the pool ranks first, a
stable sort on descending score. Block scores are float32 sums in BLAS order, so equal vectors can differ in the
last bit; `search` therefore fetches a margin beyond k, re-scores what the blocks return in float64 (every score by
the same elementwise product and last-axis sum, so equal vectors tie exactly), sorts by (score, pool row), and
searches deeper for the queries where an unfetched candidate could still tie with the k-th score before cutting:
the top-k follows the rule. (A full pass per such query would not do: in a pool of 5.6M, candidates within float32
noise of the k-th score are the rule, not the exception.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from umr.data.mbeir import Candidate
from umr.data.pool_columns import PoolColumns, RowLookup
from umr.errors import UmrError
from umr.index.block_search import block_topk

#: block scores are float32 sums in BLAS order; two candidates closer than this may be exact ties in float64
NEAR_TIE = 1e-5
#: float64 elements of one exact re-scoring block (128 MB)
_EXACT_BLOCK = 1 << 24


def exact_scores(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    """float64 scores of `vectors` [..., d] against `q` [..., d] (broadcast): an elementwise product summed over
    the last axis, the same order for every vector (no BLAS blocking), so equal vectors tie exactly."""
    return (np.asarray(vectors, dtype=np.float64) * np.asarray(q, dtype=np.float64)).sum(axis=-1)


class PoolView:
    """A pool's candidates in pool order (`dids`, `modality`, `row` = did → row) and their vectors.

    emb: the matrix holding the vectors (any float dtype, memory-mapped or not); `sel`: which of its rows are
    this pool's, in pool order (None: all of them). `device` / `kernel`: where and how `search` multiplies.
    """

    def __init__(self, cols: PoolColumns, emb: np.ndarray, root: Any = None, sel: np.ndarray | None = None,
                 device: str | None = None, kernel: str = "auto") -> None:
        n = len(sel) if sel is not None else len(emb)
        if n != len(cols):
            raise UmrError(f"{cols.path or 'pool'}: {len(cols)} candidates but {n} vectors; the embedding cache does "
                           "not match the pool file (delete the cache folder and rerun)")
        self.cols, self.emb, self.sel, self.root = cols, emb, sel, root
        self.device, self.kernel = device, kernel

    def __len__(self) -> int:
        return len(self.cols)

    @property
    def dids(self) -> np.ndarray:
        return self.cols.dids

    @property
    def modality(self) -> np.ndarray:
        return self.cols.modality

    @property
    def row(self) -> RowLookup:
        return self.cols.row

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of pool rows `rows` (any shape of int array → [..., d]), in the store's dtype."""
        rows = np.asarray(rows, dtype=np.int64)
        flat = rows.reshape(-1)
        picked = self.emb[self.sel[flat] if self.sel is not None else flat]
        return picked.reshape(*rows.shape, self.dim)

    def exact(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """float64 scores of pool rows `rows` against one query vector `q`."""
        return exact_scores(self.vectors(rows), q)

    def select(self, rows: np.ndarray) -> PoolView:
        """The sub-pool of this pool's `rows` (in that order), sharing the matrix."""
        rows = np.asarray(rows, dtype=np.int64)
        return PoolView(self.cols.subset(rows), self.emb, self.root, self.sel[rows] if self.sel is not None else rows,
                        self.device, self.kernel)

    def sub_view(self, cols: PoolColumns, path: Any) -> PoolView:
        """A smaller pool (a local pool) whose candidates are all in this one: its vectors are rows of this one's."""
        found = (self.row.get_row(str(d)) for d in cols.dids)
        rows = np.array([-1 if r is None else r for r in found], dtype=np.int64)
        if (rows < 0).any():
            missing = [str(d) for d in cols.dids[rows < 0][:3]]
            raise UmrError(f"{path}: {int((rows < 0).sum())} candidate(s) are not in the global pool (e.g. "
                           f"{missing}); evaluate the local pools without local_from_global")
        return self.select(rows)

    def with_modality(self, modality: str) -> PoolView:
        """The pool's candidates of one modality (pool order kept)."""
        return self.select(np.flatnonzero(self.modality == modality))

    def candidates(self, rows: Any) -> list[Candidate]:
        return self.cols.candidates([int(r) for r in rows])

    def item_dicts(self, rows: Any) -> list[dict[str, Any]]:
        """The candidates at `rows` as Items' dicts, image paths resolved against the pool's root (one file read)."""
        return [c.to_item(self.root).to_dict() for c in self.candidates(rows)]

    def search(self, queries: np.ndarray, k: int, progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of each query row: (scores float64 [n, k], pool rows int64 [n, k]), best first; k ≤ len(pool).

        The block search fetches more than k (a margin), the fetched rows are re-scored exactly and ranked by
        the rule; a query whose last fetched block score is within NEAR_TIE of its k-th exact score may have an
        unfetched candidate tied with it, so such queries (few; every one of a pool of copies) are searched again,
        together, four times as deep, until nothing unfetched can reach their cut."""
        k = min(k, len(self))
        n = len(queries)
        scores, rows = np.zeros((n, k), dtype=np.float64), np.zeros((n, k), dtype=np.int64)
        if k == 0 or n == 0:
            return scores, rows
        queries = np.asarray(queries, dtype=np.float32)
        todo = np.arange(n)
        fetch = min(len(self), k + max(k, 16))
        while len(todo):
            approx, found = block_topk(queries[todo], self.emb, fetch, device=self.device, kernel=self.kernel,
                                       rows=self.sel, progress=progress)
            progress = None  # the bar follows the first pass; later ones are the few deep queries
            exact = self._exact_rows(found, queries[todo])
            order = np.lexsort((found, -exact), axis=-1)
            found, exact = np.take_along_axis(found, order, 1), np.take_along_axis(exact, order, 1)
            rows[todo], scores[todo] = found[:, :k], exact[:, :k]
            if fetch == len(self):
                break
            deeper = approx[:, -1] + NEAR_TIE >= exact[:, k - 1]
            todo, fetch = todo[deeper], min(len(self), fetch * 4)
        return scores, rows

    def _exact_rows(self, found: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """float64 scores of each query's `found` pool rows [n, m], a block of queries at a time."""
        exact = np.empty(found.shape, dtype=np.float64)
        step = max(1, _EXACT_BLOCK // (found.shape[1] * self.dim))
        for q0 in range(0, len(found), step):
            exact[q0:q0 + step] = exact_scores(self.vectors(found[q0:q0 + step]), queries[q0:q0 + step, None, :])
        return exact

    def rows_from(self, q: np.ndarray, score: float, block: int = 65536) -> np.ndarray:
        """Pool rows near `score` whose exact score is at least it: with a list cut at `score`, every candidate
        that ties with its last one (one pass over the pool in blocks, so only for the queries that need it)."""
        out = []
        q32 = np.asarray(q, dtype=np.float32)
        for c0 in range(0, len(self), block):
            rows = np.arange(c0, min(c0 + block, len(self)))
            vecs = self.emb[c0:c0 + len(rows)] if self.sel is None else self.vectors(rows)
            near = np.flatnonzero(np.abs(vecs.astype(np.float32) @ q32 - score) <= NEAR_TIE)
            keep = near[exact_scores(vecs[near], q) >= score]  # float32 pre-filter, then exact float64
            out.append(rows[keep])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
