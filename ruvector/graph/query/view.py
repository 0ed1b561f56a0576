"""Query-side view of a graph's :class:`~ruvector.graph.arrays.GraphArrays` snapshot (built
once per snapshot): Python-valued keys and property columns, (label, property) -> nodes
indexes, and the adjacency and label masks of the snapshot."""
import numpy as np

from ...errors import QueryError
from . import values as V


class GraphView:
    def __init__(self, arrays):
        self.arrays = arrays
        self.num_nodes = arrays.num_nodes
        self.directed = arrays.directed
        self.keys = V.object_array(arrays.keys)         # Python values, for results
        self.key_column = V.narrow(self.keys.copy())    # int64 when every key is an int
        self.src = arrays.src
        self.dst = arrays.dst
        self.edge_types = V.object_array(arrays.edge_types)
        self._cache = {}

    @classmethod
    def of(cls, graph):
        """The view of a graph snapshot (or of anything with an ``arrays()`` snapshot)."""
        arrays = graph.arrays() if hasattr(graph, "arrays") else graph
        return arrays.cached("query_view", lambda: cls(arrays))

    def _cached(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def features(self):
        if self.arrays.dim is None:
            raise QueryError("ATTEND needs node embeddings; this graph has none")
        return self.arrays.features

    def adjacency(self, direction, types=()):
        """See :meth:`GraphArrays.adjacency`."""
        return self.arrays.adjacency(direction, types)

    def label_mask(self, labels):
        """Nodes carrying any of ``labels``."""
        return self.arrays.label_mask(labels)

    def node_property(self, key):
        """Column of property ``key`` over all nodes (``key`` itself is the node key)."""
        if key == "key":
            return self.key_column
        return self._cached(("nprop", key),
                            lambda: V.narrow(V.object_array([p.get(key) for p in
                                                             self.arrays.node_properties])))

    def edge_property(self, key):
        """Column of property ``key`` over all edges (``weight`` and ``type`` included)."""
        def build():
            if key == "weight":
                return self.arrays.weights
            if key == "type":
                return self.edge_types
            return V.narrow(V.object_array([p.get(key) for p in self.arrays.edge_properties]))
        return self._cached(("eprop", key), build)

    def lookup(self, key, value):
        """Node indices whose property ``key`` equals ``value`` (hash index built once)."""
        if key == "key":
            try:
                i = self.arrays.index.get(value)
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
