"""Edge lists in CSR form by target and by source (kept edge ids; multi-edges preserved)."""
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._validate import index_array
from ..errors import InvalidInput


@dataclass(frozen=True)
class CSRGraph:
    """``src``/``dst`` (E,) int64; ``indptr_t``/``perm_t``: edge ids into each target in
    original order; ``indptr_s``/``perm_s``: edge ids out of each source."""
    num_nodes: int
    src: np.ndarray
    dst: np.ndarray
    indptr_t: np.ndarray
    perm_t: np.ndarray
    indptr_s: np.ndarray
    perm_s: np.ndarray

    @property
    def num_edges(self):
        return int(self.src.shape[0])

    @property
    def in_degree(self):
        return np.diff(self.indptr_t)

    @property
    def edge_index(self):
        return np.stack([self.src, self.dst])

    @cached_property
    def pos_t(self):
        """pos_t[e] = row of edge e in target-CSR order (inverse of perm_t)."""
        pos = np.empty_like(self.perm_t)
        pos[self.perm_t] = np.arange(len(pos))
        return pos

    @cached_property
    def nbr_t(self):
        """nbr_t[p] = source of the edge in slot p of the target CSR (``src[perm_t]``)."""
        return np.ascontiguousarray(self.src[self.perm_t])

    @cached_property
    def nbr_s(self):
        """nbr_s[p] = target of the edge in slot p of the source CSR (``dst[perm_s]``)."""
        return np.ascontiguousarray(self.dst[self.perm_s])

    @cached_property
    def tslot_s(self):
        """tslot_s[p] = target-CSR slot of the edge in slot p of the source CSR
        (``pos_t[perm_s]``)."""
        return np.ascontiguousarray(self.pos_t[self.perm_s])

    @classmethod
    def from_edges(cls, src, dst, num_nodes):
        """Build both CSR orders with stable sorts (duplicate edges stay separate edges)."""
        from ..kernels.csr import csr_order
        src = np.ascontiguousarray(src, dtype=np.int64)
        dst = np.ascontiguousarray(dst, dtype=np.int64)
        indptr_t, perm_t = csr_order(dst, int(num_nodes))
        indptr_s, perm_s = csr_order(src, int(num_nodes))
        return cls(int(num_nodes), src, dst, indptr_t, perm_t, indptr_s, perm_s)

    @cached_property
    def self_looped(self):
        """:meth:`with_self_loops`, computed once per graph."""
        return self.with_self_loops()

    def with_self_loops(self):
        """(graph, kept) with every existing self-loop removed and one loop per node appended
        (edge ids E'..E'+N-1 are the loops of nodes 0..N-1); ``kept`` are the original ids of
        the remaining edges (the first E' edges)."""
        kept = np.flatnonzero(self.src != self.dst)
        loops = np.arange(self.num_nodes, dtype=np.int64)
        g = CSRGraph.from_edges(np.concatenate([self.src[kept], loops]),
                                np.concatenate([self.dst[kept], loops]), self.num_nodes)
        return g, kept

    def sources_into(self, i):
        """Sources of the edges into node ``i`` (int64, target-CSR order)."""
        return self.src[self.perm_t[self.indptr_t[i]:self.indptr_t[i + 1]]]


def k_hop_nodes(start, k, neighbours):
    """Nodes 1..k hops from ``start`` (excluded) in breadth-first order, each once;
    ``neighbours(i)`` gives the node indices one hop from ``i``."""
    seen, order, frontier = {start}, [], [start]
    for _ in range(int(k)):
        nxt = []
        for i in frontier:
            for j in neighbours(i):
                j = int(j)
                if j not in seen:
                    seen.add(j)
                    nxt.append(j)
        order.extend(nxt)
        frontier = nxt
        if not frontier:  # nothing farther: a huge k must not spin
            break
    return order


def as_csr(graph, num_nodes):
    """A CSRGraph from an ``edge_index`` array (2, E) (row 0 source, row 1 target) or a
    CSRGraph; indices must be integers in [0, num_nodes)."""
    if isinstance(graph, CSRGraph):
        if graph.num_nodes != num_nodes:
            raise InvalidInput(f"graph has {graph.num_nodes} nodes, features have {num_nodes}")
        return graph
    if hasattr(graph, "csr_graph"):
        return as_csr(graph.csr_graph(), num_nodes)
    try:
        ei = np.asarray(graph)
    except (TypeError, ValueError):  # ragged rows
        raise InvalidInput("edge_index must be a (2, E) array of node indices") from None
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise InvalidInput(f"edge_index must have shape (2, E), got {ei.shape}")
    if ei.size and ei.dtype.kind == "f" and np.isfinite(ei).all() and \
            (ei == np.round(ei)).all() and np.abs(ei).max() < num_nodes:
        ei = ei.astype(np.int64)  # whole numbers in a float array (e.g. a float tensor)
    ei = index_array(ei, "edge_index", size=num_nodes).reshape(2, -1)
    return CSRGraph.from_edges(ei[0], ei[1], num_nodes)
