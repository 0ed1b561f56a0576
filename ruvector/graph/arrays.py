"""GraphArrays: the read-only array snapshot of a GraphStore that the GNN layers, ``csr()``
and the query engine read (taken by :meth:`GraphStore.arrays`, cached until the store's
next mutation; derived arrays are built once per snapshot)."""
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput
from ..kernels.csr import csr_order
from ..nn.csr import CSRGraph


def _frozen(a):
    a.setflags(write=False)
    return a


class GraphArrays:
    """Nodes 0..N-1 and edges 0..E-1 of a graph as arrays.

    ``keys`` (N,) node keys, ``index`` key -> node, ``labels`` (N,) label tuples,
    ``node_properties`` / ``edge_properties`` per-row dicts (read them, do not change them),
    ``src`` / ``dst`` (E,) int64 endpoints, ``edge_types`` (E,) types (None when untyped),
    ``weights`` (E,) float64, ``features`` (N, dim) float32 (zero rows where a node has no
    embedding; None when the graph has no width yet), ``directed``.
    """

    def __init__(self, *, keys, labels, node_properties, embeddings, dim, src, dst, edge_types,
                 weights, edge_properties, directed):
        self.keys = tuple(keys)
        self.index = MappingProxyType({k: i for i, k in enumerate(self.keys)})
        self.labels = tuple(labels)
        self.node_properties = tuple(node_properties)
        self.edge_properties = tuple(edge_properties)
        self.src = _frozen(np.asarray(src, dtype=np.int64).reshape(-1))
        self.dst = _frozen(np.asarray(dst, dtype=np.int64).reshape(-1))
        self.edge_types = tuple(edge_types)
        self.weights = _frozen(np.asarray(weights, dtype=np.float64).reshape(-1))
        self.directed = bool(directed)
        self.dim = dim
        self.features = None
        if dim is not None:
            feats = np.zeros((len(self.keys), dim), np.float32)
            for i, e in enumerate(embeddings):
                if e is not None:
                    feats[i] = e
            self.features = _frozen(feats)
        self._derived = {}

    @property
    def num_nodes(self):
        return len(self.keys)

    @property
    def num_edges(self):
        return int(self.src.shape[0])

    def cached(self, key, build):
        """``build()`` once per snapshot under ``key`` (for views derived from the arrays)."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def edge_ids(self, edge_type=None):
        """(src, dst, edge ids) int64 of the edges of ``edge_type`` (all when None), each
        edge listed in both directions when the graph is undirected."""
        def build():
            ids = np.arange(self.num_edges, dtype=np.int64)
            if edge_type is not None:
                ids = ids[np.fromiter((t == edge_type for t in self.edge_types), bool,
                                      self.num_edges)]
            src, dst = self.src[ids], self.dst[ids]
            if not self.directed:
                ids, src, dst = (np.concatenate([ids, ids]), np.concatenate([src, dst]),
                                 np.concatenate([dst, src]))
            return tuple(_frozen(a) for a in (src, dst, ids))
        return self.cached(("edges", edge_type), build)

    def csr_graph(self, edge_type=None):
        """The :class:`CSRGraph` the layers use."""
        def build():
            src, dst, _ = self.edge_ids(edge_type)
            return CSRGraph.from_edges(src, dst, self.num_nodes)
        return self.cached(("csr_graph", edge_type), build)

    def csr(self, direction="in", edge_type=None):
        """(scipy.sparse.csr_matrix of edge weights, edge ids aligned with its data); "in":
        row i lists the sources of the edges into i, "out": row j the targets out of j."""
        if direction not in ("in", "out"):
            raise InvalidInput(f"direction must be 'in' or 'out', got {direction!r}")

        def build():
            src, dst, ids = self.edge_ids(edge_type)
            g = self.csr_graph(edge_type)
            indptr, perm = (g.indptr_t, g.perm_t) if direction == "in" else (g.indptr_s, g.perm_s)
            cols = (src if direction == "in" else dst)[perm]
            weights = self.weights[ids[perm]].astype(np.float32)
            mat = sp.csr_matrix((weights, cols, indptr), shape=(self.num_nodes,) * 2)
            return mat, ids[perm]
        return self.cached(("csr", direction, edge_type), build)

    def adjacency(self, direction, types=()):
        """(indptr (N+1,), neighbour (M,), edge id (M,)) for stepping along ``direction``
        ("out", "in", "both") over edges of the given types (all when empty).  "both" lists a
        self-loop once; in an undirected graph every direction is "both"."""
        if not self.directed:
            direction = "both"
        types = tuple(sorted(set(types), key=repr))
        return self.cached(("adjacency", direction, types),
                           lambda: self._adjacency(direction, types))

    def _adjacency(self, direction, types):
        eid = np.arange(self.num_edges, dtype=np.int64)
        if types:
            wanted = set(types)
            eid = eid[np.fromiter((t in wanted for t in self.edge_types), bool, self.num_edges)]
        src, dst = self.src[eid], self.dst[eid]
        if direction == "out":
            frm, nbr, ids = src, dst, eid
        elif direction == "in":
            frm, nbr, ids = dst, src, eid
        else:
            back = src != dst
            frm = np.concatenate([src, dst[back]])
            nbr = np.concatenate([dst, src[back]])
            ids = np.concatenate([eid, eid[back]])
        indptr, order = csr_order(np.ascontiguousarray(frm), self.num_nodes)
        return indptr, nbr[order], ids[order]

    def label_mask(self, labels):
        """(N,) bool: nodes carrying any of ``labels``."""
        wanted = frozenset(labels)
        return self.cached(("labels", wanted), lambda: _frozen(np.fromiter(
            (not wanted.isdisjoint(lb) for lb in self.labels), bool, self.num_nodes)))
