"""VectorStore: an HNSW index (hnswlib) with stored vectors, Arrow metadata, real deletes,
exact filtered search, attention re-ranking and crash-safe persistence.

Distances (smaller is better):

    "l2":      d(q, x) = ||q - x||^2          (squared Euclidean)
    "cosine":  d(q, x) = 1 - q.x / (|q| |x|)
    "ip":      d(q, x) = 1 - q.x

Items live in *slots* (hnswlib labels); user ids (int64) map to slots.  A delete marks the
slot deleted in hnswlib (never returned again) and frees the id; ``compact()`` rebuilds the
index without the dead slots.
"""
import os
from dataclasses import dataclass

import hnswlib
import numpy as np
import pyarrow as pa

from .. import _persist
from .._progress import progress as progress_bar
from .._arrow import read_ipc, vector_matrix, write_ipc
from .._rwlock import ModeGate, RWLock
from .._threads import num_workers
from .._validate import as_array, choice, index_array, integer
from ..errors import (CorruptFile, DimensionMismatch, InvalidConfig, InvalidInput, NotFound,
                      RuvectorError, StorageError)
from . import _metadata
from ._hnsw_blob import check_blob

METRICS = ("l2", "cosine", "ip")
FORMAT = "ruvector.vector_store"
FORMAT_VERSION = 2  # 2: the manifest carries its own SHA-256
# Filters that allow at most this many items (or under this share of the store) are answered
# by exact brute force over the allowed items; larger ones by filtered HNSW search.
BRUTE_FORCE_MAX = 4096
BRUTE_FORCE_SHARE = 0.05
# Bounds of what hnswlib is handed: M = 1 divides by log(M) = 0, and its link lists take
# 8 M + 4 bytes per item; dim, ef and capacity are C sizes.
MAX_DIM = 1 << 16
MAX_M = 1024
MAX_NATIVE_INT = 2**31 - 1
# |q|, |x| <= sqrt(float32 max) / 2 keeps ||q - x||^2 and |q . x| (and every partial sum of
# hnswlib's kernels) finite in float32
MAX_NORM = float(np.sqrt(np.finfo(np.float32).max) / 2)
PROGRESS_CHUNK = 4096  # vectors per HNSW insert call when add() shows a progress bar


RESULT_COLUMNS = ("query", "rank", "id", "distance", "score")


@dataclass
class SearchResult:
    """ids (Q, k) int64 (-1 pads), distances (Q, k) float32 (inf pads), scores (Q, k)
    float32 (higher is better: the re-ranker's score, else -distance; -inf pads), and
    ``metadata``:
    the columns asked for with ``search(include=[...])`` as a pyarrow Table of Q k rows in
    (query, rank) order (nulls on pads), else None.

    For a single query vector the arrays are (k,).
    """
    ids: np.ndarray
    distances: np.ndarray
    scores: np.ndarray = None
    metadata: pa.Table = None

    def _squeeze(self):
        return SearchResult(self.ids[0], self.distances[0],
                            None if self.scores is None else self.scores[0], self.metadata)

    def to_arrow(self):
        """One row per (query, rank) found, padding left out: ``query``, ``rank``, ``id``,
        ``distance``, ``score``, then the included metadata columns."""
        ids = np.atleast_2d(self.ids)
        Q, k = ids.shape
        keep = ids.ravel() >= 0
        columns = {"query": np.repeat(np.arange(Q, dtype=np.int32), k)[keep],
                   "rank": np.tile(np.arange(k, dtype=np.int32), Q)[keep],
                   "id": ids.ravel()[keep],
                   "distance": np.atleast_2d(self.distances).ravel()[keep]}
        if self.scores is not None:
            columns["score"] = np.atleast_2d(self.scores).ravel()[keep]
        table = pa.table(columns)
        if self.metadata is not None:
            meta = self.metadata.filter(pa.array(keep))
            for name in meta.column_names:
                table = table.append_column(name, meta.column(name))
        return table

    def to_pandas(self):
        """:meth:`to_arrow` as a pandas DataFrame (needs pandas installed)."""
        return self.to_arrow().to_pandas()


class VectorStore:
    """HNSW vector store.

    Parameters: ``dim``; ``metric`` ("l2", "cosine", "ip"); HNSW ``M``,
    ``ef_construction``, ``ef_search`` (default query breadth); ``capacity`` (initial slots,
    grows by doubling); ``seed`` (HNSW level generator).
    Thread safety: searches run concurrently; add / upsert / delete / compact take an
    exclusive lock, so a search never sees a half-added or deleted item.
    """

    def __init__(self, dim, metric="cosine", *, M=16, ef_construction=200, ef_search=64,
                 capacity=None, seed=0):
        self.dim = integer(dim, "dim", minimum=1, maximum=MAX_DIM)
        self.metric = choice(metric, "metric", METRICS)
        self.M = integer(M, "M", minimum=2, maximum=MAX_M)
        self.ef_construction = integer(ef_construction, "ef_construction", minimum=1,
                                       maximum=MAX_NATIVE_INT)
        self.ef_search = integer(ef_search, "ef_search", minimum=1, maximum=MAX_NATIVE_INT)
        self.seed = integer(seed, "seed", minimum=0, maximum=2**63 - 1)
        cap = 1024 if capacity is None else integer(capacity, "capacity", minimum=1,
                                                    maximum=MAX_NATIVE_INT)
        self._lock = RWLock()
        self._ef_gate = ModeGate()
        try:
            self._index = self._new_index(cap)
            self._vectors = np.empty((cap, self.dim), np.float32)
        except (MemoryError, RuntimeError):
            raise InvalidConfig(f"capacity={cap} x dim={self.dim} does not fit in memory "
                                f"({cap * self.dim * 4 / 2**30:.1f} GiB of vectors)") from None
        self._norms = np.empty(cap, np.float32)
        self._slot_ids = np.empty(cap, np.int64)   # slot -> id (-1 when deleted)
        self._slot_of = {}                          # id -> slot
        self._n_slots = 0
        self._meta = None                           # Arrow table aligned with slots or None
        self._next_id = 0

    # -- construction helpers -----------------------------------------------------------
    def _new_index(self, capacity):
        index = hnswlib.Index(space=self.metric, dim=self.dim)
        index.init_index(max_elements=capacity, M=self.M, ef_construction=self.ef_construction,
                         random_seed=self.seed)
        index.set_ef(self.ef_search)
        return index

    def _grow(self, needed):
        cap = self._vectors.shape[0]
        if needed <= cap:
            return
        new_cap = max(needed, 2 * cap)
        self._index.resize_index(new_cap)
        for name in ("_vectors", "_norms", "_slot_ids"):
            old = getattr(self, name)
            new = np.empty((new_cap,) + old.shape[1:], old.dtype)
            new[:self._n_slots] = old[:self._n_slots]
            setattr(self, name, new)

    def _check_vectors(self, vectors, name="vectors"):
        x = as_array(vectors, name, ndim=(1, 2))
        x = x.reshape(1, -1) if x.ndim == 1 else x
        if x.shape[1] != self.dim:
            raise DimensionMismatch(f"{name} {x.shape} must have width dim={self.dim}")
        norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
        if norms.max() > MAX_NORM:
            raise InvalidInput(f"{name} rows {np.flatnonzero(norms > MAX_NORM)[:5]} have norms "
                               f"above {MAX_NORM:.3g}, whose distances overflow float32")
        norms = norms.astype(np.float32)
        if self.metric == "cosine" and np.any(norms == 0):
            raise InvalidInput(f"{name} holds zero vectors (rows {np.flatnonzero(norms == 0)[:5]}"
                               "), which have no cosine distance")
        return x, norms

    def __repr__(self):
        return (f"VectorStore(dim={self.dim}, metric={self.metric!r}, count={len(self)}, "
                f"M={self.M}, ef_search={self.ef_search}, metadata columns="
                f"{[] if self._meta is None else self._meta.column_names})")

    def _check_ids(self, ids, n, name="ids"):
        """Unique int64 ids in [0, 2**63 - 1] (-1 marks padding and deleted slots)."""
        arr = index_array(ids, name)
        if n is not None and (np.ndim(ids) > 1 or arr.size != n):  # a scalar for one vector
            raise DimensionMismatch(f"{name} has shape {np.shape(ids)} for {n} vectors")
        if len(np.unique(arr)) != arr.size:
            raise InvalidInput(f"{name} holds duplicates")
        return arr

    # -- mutation -----------------------------------------------------------------------
    def add(self, vectors, ids=None, metadata=None, *, progress=False):
        """Add vectors (N, D) (or one (D,)); returns their int64 ids.

        ``ids`` default to consecutive integers after the largest id used so far; an id
        already present raises InvalidInput (use :meth:`upsert`).  ``metadata``: a list of
        dicts, a dict of columns or a pyarrow.Table with N rows.  ``progress``: a tqdm bar
        over the HNSW inserts (on a terminal only).
        """
        x, norms = self._check_vectors(vectors)
        table = _metadata.to_table(metadata, x.shape[0])
        with self._lock.write():
            if ids is None:
                new_ids = np.arange(self._next_id, self._next_id + x.shape[0], dtype=np.int64)
            else:
                new_ids = self._check_ids(ids, x.shape[0])
                present = [int(i) for i in new_ids if int(i) in self._slot_of]
                if present:
                    raise InvalidInput(f"ids already present: {present[:10]} (use upsert)")
            self._append(x, norms, new_ids, table, progress)
        return new_ids

    def _append(self, x, norms, new_ids, table, progress=False):
        n, start = x.shape[0], self._n_slots
        if n == 0:
            return
        self._grow(start + n)
        slots = np.arange(start, start + n, dtype=np.int64)
        self._vectors[start:start + n] = x
        self._norms[start:start + n] = norms
        self._slot_ids[start:start + n] = new_ids
        self._meta = _metadata.append(self._meta, table, start, n)
        if progress and n > PROGRESS_CHUNK:
            with progress_bar(total=n, desc="indexing", unit="vec") as bar:
                for c in range(0, n, PROGRESS_CHUNK):
                    part = slice(c, c + PROGRESS_CHUNK)
                    self._index.add_items(x[part], slots[part], num_threads=num_workers())
                    bar.update(len(slots[part]))
        else:
            self._index.add_items(x, slots, num_threads=num_workers())
        self._n_slots += n
        self._slot_of.update(zip(new_ids.tolist(), slots.tolist()))
        self._next_id = max(self._next_id, int(new_ids.max()) + 1)

    def upsert(self, vectors, ids, metadata=None):
        """Insert or replace the items with these ids (replaced items get the new metadata)."""
        x, norms = self._check_vectors(vectors)
        table = _metadata.to_table(metadata, x.shape[0])
        new_ids = self._check_ids(ids, x.shape[0])
        with self._lock.write():
            self._remove([i for i in new_ids.tolist() if i in self._slot_of])
            self._append(x, norms, new_ids, table)
        return new_ids

    def delete(self, ids):
        """Delete items by id; unknown ids raise NotFound (and nothing is deleted)."""
        arr = self._check_ids(ids, None)
        with self._lock.write():
            missing = [i for i in arr.tolist() if i not in self._slot_of]
            if missing:
                raise NotFound(f"ids not in the store: {missing[:10]}")
            self._remove(arr.tolist())

    def _remove(self, ids):
        for i in ids:
            slot = self._slot_of.pop(i)
            self._index.mark_deleted(slot)
            self._slot_ids[slot] = -1

    def compact(self):
        """Rebuild the index without deleted slots (frees their memory and disk space)."""
        with self._lock.write():
            live = np.flatnonzero(self._slot_ids[:self._n_slots] >= 0)
            x, norms, ids = self._vectors[live].copy(), self._norms[live].copy(), \
                self._slot_ids[live].copy()
            meta = None if self._meta is None else self._meta.take(pa.array(live))
            cap = max(len(live), 16)
            self._index = self._new_index(cap)
            self._vectors = np.empty((cap, self.dim), np.float32)
            self._norms = np.empty(cap, np.float32)
            self._slot_ids = np.empty(cap, np.int64)
            self._slot_of, self._n_slots, self._meta = {}, 0, None
            self._append(x, norms, ids, meta)

    # -- reading ------------------------------------------------------------------------
    def __len__(self):
        return len(self._slot_of)

    def __contains__(self, item_id):
        if isinstance(item_id, (bool, np.bool_)) or not isinstance(item_id, (int, np.integer)):
            return False  # ids are integers: 1.5 or "1" is never in the store
        return int(item_id) in self._slot_of

    def _slots(self, ids):
        arr = index_array(ids, "ids")
        try:
            return np.array([self._slot_of[int(i)] for i in arr.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise NotFound(f"id {exc.args[0]} is not in the store") from None

    @property
    def ids(self):
        """All live ids (int64, in insertion order)."""
        with self._lock.read():
            s = self._slot_ids[:self._n_slots]
            return s[s >= 0].copy()

    def get(self, ids):
        """Stored vectors (n, dim) of these ids (as given, not normalised)."""
        with self._lock.read():
            return self._vectors[self._slots(ids)].copy()

    def metadata(self, ids, columns=None):
        """pyarrow.Table of the metadata rows of these ids, in order (with an ``id`` column).

        ``ids`` may have any shape (rows in C order), e.g. ``result.ids``: -1 (padding)
        gives a row of nulls.  ``columns``: the metadata columns to return (default all).
        """
        arr = index_array(ids, "ids", pad=-1)
        pad = arr == -1
        with self._lock.read():
            slots = np.full(arr.size, -1, dtype=np.int64)
            slots[~pad] = self._slots(arr[~pad])
            ids_col = pa.array(np.where(pad, -1, self._slot_ids[slots]), mask=pad)
            meta = self._select_columns(columns)
            if meta is None:
                return pa.table({"id": ids_col})
            return _metadata.take_rows(meta, slots).add_column(0, "id", ids_col)

    def _included(self, include):
        """The metadata columns a search returns (None: none asked for)."""
        if include is None:
            return None
        clash = [c for c in include if c in RESULT_COLUMNS] \
            if isinstance(include, (list, tuple)) else []
        if clash:
            raise InvalidInput(f"include: {clash} are result columns ({', '.join(RESULT_COLUMNS)});"
                               " read those metadata columns with store.metadata(result.ids)")
        return self._select_columns(include)

    def _select_columns(self, columns):
        """The metadata table restricted to ``columns`` (None: all; [] -> None)."""
        if columns is None:
            return self._meta
        if not isinstance(columns, (list, tuple)) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput(f"columns must be a list of column names, got {columns!r}")
        unknown = [c for c in columns if c not in _metadata.column_names(self._meta)]
        if unknown:
            raise InvalidInput(f"unknown metadata columns {unknown}; the store's columns: "
                               + _metadata.describe_columns(self._meta))
        return self._meta.select(list(columns)) if columns else None

    # -- search -------------------------------------------------------------------------
    def search(self, queries, k=10, *, ef=None, filter=None, rerank=None, candidates=None,
               include=None):
        """k nearest items of each query; see :class:`SearchResult`.

        ``filter``: a metadata filter (``{column: value}``, operators such as
        ``{"year": {"$gte": 2020}}``, ``$and`` / ``$or``; see ``_metadata.filter_mask``), a
        set / list / array of allowed ids, or a callable taking an int64 array of ids and
        returning a boolean array (or taking one id and returning a bool).  When at least k
        items match, exactly k matching items are returned (exact search for selective
        filters).
        ``rerank``: None, "attention", "exact" or an :class:`AttentionReranker`; it
        re-scores ``candidates`` (default 10 k) HNSW results and returns the top k with
        ``scores``.  Rows have ``min(k, len(store))`` entries; when a filter admits fewer
        items, they are padded with id -1, distance inf.
        ``include``: metadata columns returned with the result (``result.metadata``,
        ``result.to_arrow()``).
        """
        from .rerank import AttentionReranker
        q, _ = self._check_vectors(queries, "queries")
        single = np.ndim(queries) == 1
        integer(k, "k", minimum=1, error=InvalidInput)
        reranker = AttentionReranker.resolve(rerank)
        if reranker is not None:
            candidates = 10 * k if candidates is None else candidates
            if not isinstance(candidates, (int, np.integer)) or candidates < k:
                raise InvalidInput(f"candidates must be an integer >= k={k}, got {candidates!r}")
        elif candidates is not None:
            raise InvalidInput("candidates is only used with rerank")
        if ef is not None:
            ef = integer(ef, "ef", minimum=1, maximum=MAX_NATIVE_INT, error=InvalidInput)
        with self._lock.read():
            included = self._included(include)
            # k and candidates are capped at the live count before anything is allocated
            width = min(int(k), len(self))
            fetch = min(int(candidates), len(self)) if reranker is not None else width
            slots, dist = self._knn(q, fetch, ef, self._allowed(filter))
            if reranker is not None and width:
                slots, dist, scores = reranker.rerank(q, slots, dist, width, self._vectors,
                                                      self._norms, self.metric)
            else:
                scores = -dist
            pads = slots < 0
            padded = bool(pads.any())
            ids = self._slot_ids[np.where(pads, 0, slots) if padded else slots]
            meta = None if included is None else _metadata.take_rows(included,
                                                                     slots.reshape(-1))
        scores = np.asarray(scores, dtype=np.float32)
        if padded:
            ids[pads], scores[pads] = -1, -np.inf
        result = SearchResult(ids, dist.astype(np.float32, copy=False), scores, meta)
        return result._squeeze() if single else result

    def _allowed(self, filter):
        """None (no filter) or a boolean array over slots of allowed live items."""
        if filter is None:
            return None
        n = self._n_slots
        live = self._slot_ids[:n] >= 0
        if isinstance(filter, dict):
            return _metadata.filter_mask(self._meta, filter, n) & live
        if callable(filter):
            ids = self._slot_ids[:n][live]
            try:
                verdict = np.asarray(filter(ids))
                if verdict.shape != ids.shape:
                    raise TypeError
            except (TypeError, ValueError):
                verdict = np.array([bool(filter(int(i))) for i in ids.tolist()])
            allowed = np.zeros(n, dtype=bool)
            allowed[np.flatnonzero(live)] = verdict.astype(bool)
            return allowed
        if isinstance(filter, (str, bytes)):
            raise InvalidInput("filter must be a mapping, a collection of ids or a callable, "
                               f"got {filter!r}")
        if not isinstance(filter, (list, tuple, np.ndarray)):
            try:
                filter = list(filter)  # sets, ranges, generators
            except TypeError:
                raise InvalidInput("filter must be a mapping, a collection of ids or a "
                                   f"callable, got {type(filter).__name__}") from None
        wanted = index_array(filter, "filter ids")
        allowed = np.zeros(n, dtype=bool)
        slots = [self._slot_of[i] for i in wanted.tolist() if i in self._slot_of]
        allowed[slots] = True
        return allowed

    def _knn(self, q, k, ef, allowed):
        """(slots (Q, k) int64, distances (Q, k) float32) of the k nearest allowed items,
        padded with -1 / inf when fewer are allowed."""
        Q = q.shape[0]
        n_ok = len(self) if allowed is None else int(allowed.sum())
        k_eff = min(k, n_ok)
        if k_eff == 0:
            return np.full((Q, k), -1, dtype=np.int64), np.full((Q, k), np.inf, np.float32)
        if allowed is not None and (n_ok <= BRUTE_FORCE_MAX or n_ok < BRUTE_FORCE_SHARE * len(self)):
            return self._brute_force(q, k, np.flatnonzero(allowed))
        hnsw_filter = None if allowed is None else (lambda label: bool(allowed[label]))
        threads = 1 if hnsw_filter is not None else num_workers()
        # hnswlib's ef is one setting of the shared index: searches needing another value
        # wait until the running ones finish instead of changing it under them
        ef_needed = max(self.ef_search if ef is None else ef, k_eff)
        with self._ef_gate.hold(ef_needed, lambda: self._index.set_ef(ef_needed)):
            try:
                labels, d = self._index.knn_query(q, k=k_eff, num_threads=threads,
                                                  filter=hnsw_filter)
            except RuntimeError:  # HNSW found fewer than k_eff: answer exactly instead
                labels = None
        if labels is None:
            live = np.flatnonzero(self._slot_ids[:self._n_slots] >= 0) if allowed is None \
                else np.flatnonzero(allowed)
            return self._brute_force(q, k, live)
        if self.metric == "l2":  # float32 rounding can give tiny negative squared distances
            np.maximum(d, 0, out=d)
        if k_eff == k:           # the common case: hnswlib's arrays are the answer
            return labels.astype(np.int64, copy=False), d
        slots = np.full((Q, k), -1, dtype=np.int64)
        dist = np.full((Q, k), np.inf, dtype=np.float32)
        slots[:, :k_eff], dist[:, :k_eff] = labels, d
        return slots, dist

    def _brute_force(self, q, k, candidate_slots):
        """Exact k nearest among ``candidate_slots`` (distances by the store's metric)."""
        from ..kernels.metric import exact_top_k
        cand = np.ascontiguousarray(np.broadcast_to(candidate_slots,
                                                    (q.shape[0], len(candidate_slots))))
        return exact_top_k(q, cand, self._vectors, self._norms, self.metric, k)

    # -- Arrow and Parquet --------------------------------------------------------------
    def to_arrow(self, vector_column="vector", id_column="id"):
        """pyarrow.Table of the live items: id, vector (fixed-size list<float32>), metadata."""
        with self._lock.read():
            live = np.flatnonzero(self._slot_ids[:self._n_slots] >= 0)
            flat = pa.array(self._vectors[live].reshape(-1))
            cols = {id_column: pa.array(self._slot_ids[live]),
                    vector_column: pa.FixedSizeListArray.from_arrays(flat, self.dim)}
            table = pa.table(cols)
            if self._meta is not None:
                meta = self._meta.take(pa.array(live))
                for name in meta.column_names:
                    if name in cols:
                        raise InvalidInput(f"metadata column {name!r} clashes with "
                                           f"{vector_column!r}/{id_column!r}")
                    table = table.append_column(name, meta.column(name))
            return table

    @classmethod
    def from_arrow(cls, table, vector_column="vector", id_column="id", **kwargs):
        """Build a store from a table with a list<float> vector column (ids optional).

        Other columns become metadata; ``kwargs`` go to the constructor (``metric``...).
        """
        if not isinstance(table, pa.Table):
            raise InvalidInput(f"table must be a pyarrow.Table, got {type(table).__name__}")
        if table.num_rows == 0:
            raise InvalidInput("table has no rows, so the vector width is unknown: create "
                               "VectorStore(dim, ...) instead")
        if vector_column not in table.column_names:
            raise InvalidInput(f"table has no column {vector_column!r} "
                               f"(columns: {table.column_names})")
        vectors = vector_matrix(table.column(vector_column), f"column {vector_column!r}")
        dim = vectors.shape[1]
        ids = table.column(id_column).to_numpy() if id_column in table.column_names else None
        meta_cols = [c for c in table.column_names if c not in (vector_column, id_column)]
        store = cls(dim, **kwargs)
        store.add(vectors, ids, table.select(meta_cols) if meta_cols else None)
        return store

    def to_parquet(self, path, **kwargs):
        """Write :meth:`to_arrow` to a Parquet file."""
        import pyarrow.parquet as pq
        pq.write_table(self.to_arrow(**kwargs), path)

    @classmethod
    def from_parquet(cls, path, vector_column="vector", id_column="id", **kwargs):
        """Read a Parquet file written by :meth:`to_parquet` (or any with a vector column)."""
        import pyarrow.parquet as pq
        return cls.from_arrow(pq.read_table(path), vector_column, id_column, **kwargs)

    # -- persistence --------------------------------------------------------------------
    def save(self, path):
        """Save to directory ``path`` as a new generation, atomically (see ruvector._persist)."""
        with _persist.writer_lock(path), self._lock.read():
            n = self._n_slots
            flat = pa.array(self._vectors[:n].reshape(-1))
            slots_table = pa.table({
                "id": pa.array(self._slot_ids[:n]),
                "vector": pa.FixedSizeListArray.from_arrays(flat, self.dim)})
            writers = {"slots.arrow": lambda p: write_ipc(slots_table, p),
                       "index.hnsw": lambda p: self._save_index(p, n)}
            if self._meta is not None:
                writers["metadata.arrow"] = lambda p: write_ipc(self._meta, p)
            meta = {"dim": self.dim, "metric": self.metric, "count": len(self), "slots": n,
                    "M": self.M, "ef_construction": self.ef_construction,
                    "ef_search": self.ef_search, "seed": self.seed, "next_id": self._next_id}
            _persist.write_generation(path, FORMAT, FORMAT_VERSION, writers, meta)

    def _save_index(self, path, n):
        self._index.save_index(path)
        try:  # hnswlib reports no failed write: a full disk leaves a short file
            check_blob(path, self.dim, self.M, n)
        except CorruptFile as exc:
            raise StorageError(f"hnswlib wrote an incomplete index ({exc})") from None

    @staticmethod
    def info(path):
        """Summary of a saved store without loading its data: format, version, generation, dim,
        metric, count, slots, M, ef_construction, ef_search and bytes on disk."""
        manifest, _ = _persist.read_generation(path, FORMAT, FORMAT_VERSION)
        try:
            info = {k: manifest[k] for k in ("format", "version", "generation", "dim",
                                             "metric", "count", "slots", "M",
                                             "ef_construction", "ef_search")}
        except KeyError as exc:
            raise CorruptFile(f"{path}: the manifest lacks {exc}") from None
        info["bytes"] = _persist.manifest_bytes(manifest)
        return info

    @classmethod
    def load(cls, path):
        """Load a saved store.  Every file is verified before it is parsed, then what it holds
        is checked against the manifest (sizes, counts, unique ids, finite vectors, the
        hnswlib header); anything else raises CorruptFile."""
        return _persist.load_generation(path, FORMAT, FORMAT_VERSION,
                                        lambda m, d: cls._from_generation(path, m, d))

    @classmethod
    def _from_generation(cls, path, manifest, gen_dir):
        try:
            n = integer(manifest["slots"], "slots", maximum=MAX_NATIVE_INT, error=CorruptFile)
            store = cls(manifest["dim"], manifest["metric"], M=manifest["M"],
                        ef_construction=manifest["ef_construction"],
                        ef_search=manifest["ef_search"], capacity=max(n, 16),
                        seed=manifest["seed"])
            slots = read_ipc(os.path.join(gen_dir, "slots.arrow"))
            if slots.num_rows != n:
                raise CorruptFile(f"slots.arrow has {slots.num_rows} rows, expected {n}")
            if slots.column("id").null_count:
                raise CorruptFile("slots.arrow holds null ids")
            ids = np.asarray(slots.column("id").to_numpy(), dtype=np.int64)
            vectors = vector_matrix(slots.column("vector"), "slots.arrow vectors", store.dim)
            live_ids = ids[ids >= 0]
            next_id = integer(manifest["next_id"], "next_id", maximum=2**63 - 1,
                              error=CorruptFile)
            problems = [
                (ids < -1).any() and "ids below -1",
                len(np.unique(live_ids)) != live_ids.size and "repeated ids",
                live_ids.size != manifest["count"] and
                f"{live_ids.size} live ids for a count of {manifest['count']!r}",
                live_ids.size and next_id <= live_ids.max() and
                f"next_id {next_id} <= the largest id {live_ids.max()}",
                not np.isfinite(vectors).all() and "NaN/Inf vectors"]
            problems = [p for p in problems if p]
            if problems:
                raise CorruptFile("; ".join(problems))
            meta = None
            if "metadata.arrow" in manifest["files"]:
                meta = read_ipc(os.path.join(gen_dir, "metadata.arrow"))
                if meta.num_rows != n:
                    raise CorruptFile(f"metadata.arrow has {meta.num_rows} rows for {n} slots")
        except (RuvectorError, KeyError, TypeError, ValueError, pa.ArrowException) as exc:
            if isinstance(exc, StorageError):
                raise CorruptFile(f"{path}: {exc}") from None
            raise CorruptFile(f"{path}: inconsistent store files: {exc}") from None
        blob = os.path.join(gen_dir, "index.hnsw")
        check_blob(blob, store.dim, store.M, n)
        store._index = hnswlib.Index(space=store.metric, dim=store.dim)
        store._index.load_index(blob, max_elements=store._vectors.shape[0])
        store._index.set_ef(store.ef_search)
        store._vectors[:n] = vectors
        store._norms[:n] = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
        store._slot_ids[:n] = ids
        store._n_slots = n
        store._slot_of = dict(zip(live_ids.tolist(), np.flatnonzero(ids >= 0).tolist()))
        store._next_id = next_id
        store._meta = meta
        return store
