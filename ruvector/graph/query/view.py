"""Read-only array view of a GraphStore for the query engine, cached by the store until its
next mutation: adjacency per (direction, edge types), label masks, property columns and
(label, property) -> nodes indexes."""
import numpy as np

from ...errors import QueryError
from . import values as V


class GraphView:
    def __init__(self, store):
        self.store = store
        self.num_nodes = store.num_nodes
        self.directed = store.directed
        self.keys = V.object_array(store._keys)         # Python values, for results
        self.key_column = V.narrow(self.keys.copy())    # int64 when every key is an int
        self.src = np.asarray(store._src, dtype=np.int64)
        self.dst = np.asarray(store._dst, dtype=np.int64)
        self.edge_types = V.object_array(store._type)
        self._cache = {}

    @classmethod
    def of(cls, store):
        view = store._cache.get("query_view")
        if view is None:
            view = store._cache["query_view"] = cls(store)
        return view

    def _cached(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def features(self):
        if self.store.dim is None:
            raise QueryError("ATTEND needs node embeddings; this graph has none")
        return self.store.features

    # -- adjacency ----------------------------------------------------------------------------
    def adjacency(self, direction, types=()):
        """(indptr (N+1,), neighbour (M,), edge id (M,)) for stepping along ``direction``
        ("out", "in", "both") over edges of the given types (all when empty).  "both" lists a
        self-loop once; in an undirected store every direction is "both"."""
        if not self.directed:
            direction = "both"
        return self._cached(("adj", direction, tuple(sorted(types))),
                            lambda: self._build_adjacency(direction, types))

    def _build_adjacency(self, direction, types):
        eid = np.arange(len(self.src), dtype=np.int64)
        if types:
            wanted = set(types)
            eid = eid[np.fromiter((t in wanted for t in self.edge_types), bool,
                                  len(self.edge_types))]
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
        order = np.argsort(frm, kind="stable")
        indptr = np.zeros(self.num_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(frm, minlength=self.num_nodes), out=indptr[1:])
        return indptr, nbr[order], ids[order]

    # -- nodes ---------------------------------------------------------------------------------
    def label_mask(self, labels):
        """Nodes carrying any of ``labels``."""
        def build():
            wanted = set(labels)
            return np.fromiter((not wanted.isdisjoint(lb) for lb in self.store._labels), bool,
                               self.num_nodes)
        return self._cached(("labels", tuple(sorted(labels))), build)

    def node_property(self, key):
        """Column of property ``key`` over all nodes (``key`` itself is the node key)."""
        if key == "key":
            return self.key_column
        return self._cached(("nprop", key),
                            lambda: V.narrow(V.object_array([p.get(key)
                                                            for p in self.store._props])))

    def edge_property(self, key):
        """Column of property ``key`` over all edges (``weight`` and ``type`` included)."""
        def build():
            if key == "weight":
                return np.asarray(self.store._weight, dtype=np.float64)
            if key == "type":
                return self.edge_types
            return V.narrow(V.object_array([p.get(key) for p in self.store._eprops]))
        return self._cached(("eprop", key), build)

    def lookup(self, key, value):
        """Node indices whose property ``key`` equals ``value`` (hash index built once)."""
        if key == "key":
            try:
                i = self.store._index.get(value)
            except TypeError:
                return np.zeros(0, np.int64)
            hit = i is not None and V.eq(self.keys[i], value) is True   # True is not 1
            return np.array([i] if hit else [], dtype=np.int64)
        index = self._cached(("index", key), lambda: self._build_index(key))
        try:
            return index.get(V.hashable(value), np.zeros(0, np.int64))
        except TypeError:
            return np.zeros(0, np.int64)

    def _build_index(self, key):
        groups = {}
        for i, v in enumerate(self.node_property(key).tolist()):
            if v is not None:
                groups.setdefault(V.hashable(v), []).append(i)
        return {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}

    # -- values shown to the user -------------------------------------------------------------
    def relationship(self, e):
        return {"id": int(e), "type": self.edge_types[e], "source": self.keys[self.src[e]],
                "target": self.keys[self.dst[e]]}
