"""GraphStore: a directed multigraph with node embeddings, labels, typed weighted edges
and properties; NetworkX in and out, CSR views for the layers, crash-safe persistence.

Nodes are addressed by key (any hashable; str or int to be saved) and hold a dense index
0..N-1 in insertion order.  Removing a node re-numbers the nodes after it (O(N + E)).
Edges are (source, target, type, weight, feature vector, properties); parallel edges are
separate edges.  An undirected store (``directed=False``) keeps each edge once and exposes
it in both directions in ``edge_index``, ``csr`` and ``neighbors``.
"""
import json
import os

import numpy as np
import pyarrow as pa

from .. import _persist
from .._arrow import read_ipc, vectors_column, vectors_from_column, write_ipc
from .._validate import as_array, choice, finite_number, index_array, integer
from ..errors import CorruptFile, DimensionMismatch, InvalidInput, NotFound
from ..nn.csr import k_hop_nodes
from .arrays import GraphArrays
from .query import MAX_MEMORY

FORMAT = "ruvector.graph_store"
FORMAT_VERSION = 2  # 2: the manifest carries its own SHA-256
DIRECTIONS = ("out", "in", "both")


class GraphStore:
    """Graph with node embeddings of one width ``dim`` (set by the first embedding when None)."""

    def __init__(self, dim=None, *, directed=True):
        self.dim = None if dim is None else int(dim)
        self.directed = bool(directed)
        self._keys, self._index = [], {}
        self._labels, self._props, self._emb = [], [], []
        self._src, self._dst, self._type, self._weight = [], [], [], []
        self._efeat, self._eprops = [], []
        self._efeat_dim = None               # width of edge features (None until the first)
        self._cache = {}

    # -- nodes ----------------------------------------------------------------------------
    def _vector(self, value, name):
        v = as_array(value, name, ndim=1)
        if self.dim is None:
            self.dim = v.shape[0]
        if v.shape[0] != self.dim:
            raise DimensionMismatch(f"{name} has width {v.shape[0]}, the store uses {self.dim}")
        return v

    def add_node(self, key, *, labels=(), embedding=None, **properties):
        """Add a node (an existing key raises InvalidInput); returns its index."""
        try:
            hash(key)
        except TypeError:
            raise InvalidInput(f"node key {key!r} is not hashable") from None
        if key in self._index:
            raise InvalidInput(f"node {key!r} already exists")
        emb = None if embedding is None else self._vector(embedding, f"embedding of {key!r}")
        labels = _labels(labels, key)
        self._index[key] = len(self._keys)
        self._keys.append(key)
        self._labels.append(labels)
        self._props.append(dict(properties))
        self._emb.append(emb)
        self._cache.clear()
        return self._index[key]

    def add_nodes(self, keys, *, labels=None, embeddings=None, properties=None):
        """Bulk add: ``labels``/``properties`` are per-node lists, ``embeddings`` (n, dim)."""
        keys = list(keys)
        emb = None
        if embeddings is not None:
            emb = as_array(embeddings, "embeddings", ndim=2)
            if emb.shape[0] != len(keys):
                raise DimensionMismatch(f"embeddings has {emb.shape[0]} rows for {len(keys)} keys")
        for i, key in enumerate(keys):
            self.add_node(key, labels=() if labels is None else labels[i],
                          embedding=None if emb is None else emb[i],
                          **({} if properties is None else properties[i]))

    def remove_node(self, key):
        """Remove a node and every edge touching it."""
        i = self.index_of(key)
        keep = [e for e in range(len(self._src)) if self._src[e] != i and self._dst[e] != i]
        self._keep_edges(keep)
        for lst in (self._keys, self._labels, self._props, self._emb):
            del lst[i]
        self._src = [s - (s > i) for s in self._src]
        self._dst = [d - (d > i) for d in self._dst]
        self._index = {k: n for n, k in enumerate(self._keys)}
        self._cache.clear()

    def index_of(self, key):
        try:
            return self._index[key]
        except (KeyError, TypeError):
            raise NotFound(f"node {key!r} is not in the graph") from None

    def indices_of(self, nodes, by=None):
        """Row indices (int64) of ``nodes``: node keys (``by="key"``, as queries return
        them) or row indices (``by="index"``).  ``by=None`` reads keys, except integers in a
        store with no integer keys, which are indices.  Unknown keys raise NotFound."""
        choice(by or "auto", "by", ("auto", "key", "index"), error=InvalidInput)
        if nodes is None:
            raise InvalidInput("nodes must be a node key or a list of them, got None")
        items = [nodes] if isinstance(nodes, str) or not np.iterable(nodes) else list(nodes)
        if by == "index" or (by is None and items and all(
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in items)
                and not any(isinstance(k, int) and not isinstance(k, bool)
                            for k in self._index)):
            return index_array(items, "nodes", size=self.num_nodes)
        return np.array([self.index_of(n) for n in items], dtype=np.int64)

    def key_of(self, index):
        if not 0 <= int(index) < len(self._keys):
            raise NotFound(f"node index {index} is out of range")
        return self._keys[int(index)]

    def node(self, key):
        """dict with key, index, labels, embedding (or None) and properties."""
        i = self.index_of(key)
        return {"key": key, "index": i, "labels": self._labels[i], "embedding": self._emb[i],
                "properties": dict(self._props[i])}

    def __repr__(self):
        labels = sorted({lab for labs in self._labels for lab in labs}, key=str)
        types = sorted({t for t in self._type if t is not None}, key=str)
        return (f"GraphStore(nodes={self.num_nodes}, edges={self.num_edges}, "
                f"directed={self.directed}, dim={self.dim}, labels={labels[:8]}"
                f"{'...' if len(labels) > 8 else ''}, types={types[:8]}"
                f"{'...' if len(types) > 8 else ''})")

    @property
    def num_nodes(self):
        return len(self._keys)

    @property
    def num_edges(self):
        return len(self._src)

    @property
    def keys(self):
        return list(self._keys)

    @property
    def features(self):
        """(N, dim) float32 node embeddings (zero rows for nodes without one), read-only."""
        feats = self.arrays().features
        return np.zeros((self.num_nodes, 0), np.float32) if feats is None else feats

    def arrays(self):
        """The read-only :class:`GraphArrays` snapshot of the graph (cached until the next
        change): what the layers, :meth:`csr` and queries read."""
        if "arrays" not in self._cache:
            self._cache["arrays"] = GraphArrays(
                keys=self._keys, labels=self._labels, node_properties=self._props,
                embeddings=self._emb, dim=self.dim, src=self._src, dst=self._dst,
                edge_types=self._type, weights=self._weight, edge_properties=self._eprops,
                directed=self.directed)
        return self._cache["arrays"]

    # -- edges ----------------------------------------------------------------------------
    def add_edge(self, source, target, *, type=None, weight=1.0, feature=None, **properties):
        """Add an edge (parallel edges allowed); returns its edge id."""
        s, t = self.index_of(source), self.index_of(target)
        w = finite_number(weight, "edge weight", error=InvalidInput)
        feat = None if feature is None else as_array(feature, "feature", ndim=1)
        width = self._efeat_dim
        if feat is not None and width is not None and feat.shape[0] != width:
            raise DimensionMismatch(f"edge feature width {feat.shape[0]} != {width}")
        if feat is not None:
            self._efeat_dim = feat.shape[0]
        self._src.append(s)
        self._dst.append(t)
        self._type.append(None if type is None else str(type))
        self._weight.append(w)
        self._efeat.append(feat)
        self._eprops.append(dict(properties))
        self._cache.clear()
        return len(self._src) - 1

    def add_edges(self, edges, *, type=None):
        """Bulk add of (source, target) or (source, target, attrs-dict) tuples (a (E, 2)
        array of keys works too); returns nothing.  Plain pairs take a fast path."""
        try:
            edges = [tuple(edge) for edge in edges]
        except TypeError:
            raise InvalidInput("edges must be an iterable of (source, target) or (source, "
                               "target, attrs) tuples") from None
        bad = next((e for e in edges if len(e) not in (2, 3)
                    or (len(e) == 3 and not isinstance(e[2], dict))), None)
        if bad is not None:
            raise InvalidInput(f"an edge must be (source, target) or (source, target, "
                               f"attrs-dict), got {bad!r}")
        if all(len(edge) == 2 for edge in edges):
            try:
                src = [self._index[edge[0]] for edge in edges]
                dst = [self._index[edge[1]] for edge in edges]
            except (KeyError, TypeError) as exc:
                raise NotFound(f"edge endpoint {exc.args[0]!r} is not in the graph") from None
            n = len(edges)
            self._src += src
            self._dst += dst
            self._type += [None if type is None else str(type)] * n
            self._weight += [1.0] * n
            self._efeat += [None] * n
            self._eprops += [{} for _ in range(n)]
            self._cache.clear()
            return
        for edge in edges:
            attrs = dict(edge[2]) if len(edge) > 2 else {}
            attrs.setdefault("type", type)
            self.add_edge(edge[0], edge[1], **attrs)

    def remove_edge(self, source, target, type=None):
        """Remove every edge source -> target (of ``type`` when given); NotFound if none."""
        s, t = self.index_of(source), self.index_of(target)
        hit = [e for e in range(self.num_edges) if self._src[e] == s and self._dst[e] == t
               and (type is None or self._type[e] == type)]
        if not hit:
            raise NotFound(f"no edge {source!r} -> {target!r}" + (f" of type {type!r}" if type else ""))
        drop = set(hit)
        self._keep_edges([e for e in range(self.num_edges) if e not in drop])

    def _keep_edges(self, keep):
        for name in ("_src", "_dst", "_type", "_weight", "_efeat", "_eprops"):
            lst = getattr(self, name)
            setattr(self, name, [lst[e] for e in keep])
        self._efeat_dim = next((f.shape[0] for f in self._efeat if f is not None), None)
        self._cache.clear()

    def edge(self, edge_id):
        e = int(edge_id)
        if not 0 <= e < self.num_edges:
            raise NotFound(f"edge {edge_id} is out of range")
        return {"source": self._keys[self._src[e]], "target": self._keys[self._dst[e]],
                "type": self._type[e], "weight": self._weight[e], "feature": self._efeat[e],
                "properties": dict(self._eprops[e])}

    def edge_index(self, edge_type=None):
        """(2, E) int64, row 0 source, row 1 target."""
        src, dst, _ = self.arrays().edge_ids(edge_type)
        return np.stack([src, dst]) if len(src) else np.zeros((2, 0), np.int64)

    def csr_graph(self, edge_type=None):
        """The :class:`CSRGraph` the layers use (cached until the next mutation)."""
        return self.arrays().csr_graph(edge_type)

    def csr(self, direction="in", edge_type=None):
        """(scipy.sparse.csr_matrix of edge weights, edge ids aligned with its data).

        direction "in": row i lists the sources of the edges into i; "out": row j lists
        the targets of the edges out of j.  Parallel edges stay separate entries.
        """
        return self.arrays().csr(direction, edge_type)

    def neighbors(self, key, direction="out", type=None):
        """Keys of the neighbours (each once, in edge order)."""
        return [self._keys[n] for n in self._neighbour_indices(self.index_of(key), direction,
                                                               type)]

    def _neighbour_indices(self, i, direction, type):
        choice(direction, "direction", DIRECTIONS, error=InvalidInput)
        out = []
        for d in (("out", "in") if direction == "both" else (direction,)):
            mat, _ = self.csr(d, type)
            out.extend(mat.indices[mat.indptr[i]:mat.indptr[i + 1]].tolist())
        return dict.fromkeys(out)

    def k_hop(self, key, k, direction="out", type=None):
        """Keys within 1..k hops (breadth-first order, start excluded)."""
        k = integer(k, "k", error=InvalidInput)
        order = k_hop_nodes(self.index_of(key), k,
                            lambda i: self._neighbour_indices(i, direction, type))
        return [self._keys[n] for n in order]

    # -- queries ---------------------------------------------------------------------------
    def query(self, text, params=None, *, max_hops=10, max_expansions=1_000_000, timeout=None,
              max_memory=MAX_MEMORY):
        """Run a Cypher-like read query (``MATCH ... [WHERE] [ATTEND BY] RETURN ...``).

        Values enter only through ``params`` ($name).  An unbounded ``*`` stops at
        ``max_hops``; passing ``max_expansions`` (edges scanned), ``timeout`` (seconds,
        checked before every hop and filter) or ``max_memory`` (bytes of match rows one
        step would build, checked before it allocates) raises QueryLimitExceeded with the
        statistics so far.  Returns a QueryResult.
        """
        from .query import run_query
        return run_query(self.arrays(), text, params, max_hops=max_hops,
                         max_expansions=max_expansions, timeout=timeout,
                         max_memory=max_memory)

    def trace(self, text, params=None, **limits):
        """The matches of a ``MATCH ... ATTEND BY ... RETURN`` query as paths with their
        ``score()`` (what ``ruvector.viz.traversal`` draws); ``limits`` as for :meth:`query`.
        See :func:`ruvector.graph.query.trace`."""
        from .query import trace
        return trace(self.arrays(), text, params, **limits)

    def explain(self, text, params=None, *, file=None):
        """Print (to ``file``, default stdout) and return the plan of a query."""
        from .query import explain
        plan = explain(self.arrays(), text, params)
        print(plan, file=file)
        return plan

    # -- NetworkX -------------------------------------------------------------------------
    @classmethod
    def from_networkx(cls, G, embedding_attr="embedding", label_attr="label", type_attr="type",
                      weight_attr="weight", feature_attr="feature"):
        """A store from any NetworkX graph; other node/edge attributes become properties."""
        store = cls(directed=G.is_directed())
        for key, data in G.nodes(data=True):
            data = dict(data)
            emb = data.pop(embedding_attr, None)
            labels = data.pop(label_attr, ())
            store.add_node(key, labels=labels, embedding=emb, **data)
        edges = G.edges(data=True, keys=True) if G.is_multigraph() else G.edges(data=True)
        for edge in edges:
            data = dict(edge[-1])
            store.add_edge(edge[0], edge[1], type=data.pop(type_attr, None),
                           weight=data.pop(weight_attr, 1.0),
                           feature=data.pop(feature_attr, None), **data)
        return store

    def to_networkx(self, embedding_attr="embedding", label_attr="label", type_attr="type"):
        """A MultiDiGraph (MultiGraph when undirected) with every attribute."""
        import networkx as nx
        G = nx.MultiDiGraph() if self.directed else nx.MultiGraph()
        for i, key in enumerate(self._keys):
            attrs = dict(self._props[i])
            if self._labels[i]:
                attrs[label_attr] = list(self._labels[i])
            if self._emb[i] is not None:
                attrs[embedding_attr] = self._emb[i].copy()
            G.add_node(key, **attrs)
        for e in range(self.num_edges):
            attrs = dict(self._eprops[e], weight=self._weight[e])
            if self._type[e] is not None:
                attrs[type_attr] = self._type[e]
            if self._efeat[e] is not None:
                attrs["feature"] = self._efeat[e].copy()
            G.add_edge(self._keys[self._src[e]], self._keys[self._dst[e]], **attrs)
        return G

    # -- Arrow / Parquet import -----------------------------------------------------------
    @classmethod
    def from_arrow(cls, nodes, edges, *, key_column="key", embedding_column="embedding",
                   label_column="label", source_column="source", target_column="target",
                   type_column="type", weight_column="weight", directed=True):
        """A store from a node table and an edge table (pyarrow Tables); columns not named
        here become properties.  Missing optional columns are fine; labels may be a string
        or a list of strings per row."""
        for table, col, what in ((nodes, key_column, "nodes"), (edges, source_column, "edges"),
                                 (edges, target_column, "edges")):
            if col not in table.column_names:
                raise InvalidInput(f"{what} table has no column {col!r} "
                                   f"(columns: {table.column_names})")
        store = cls(directed=directed)
        node_rows = nodes.to_pylist()
        for row in node_rows:
            key = row.pop(key_column)
            labels = row.pop(label_column, None) or ()
            store.add_node(key, labels=labels, embedding=row.pop(embedding_column, None), **row)
        for row in edges.to_pylist():
            weight = row.pop(weight_column, None)
            store.add_edge(row.pop(source_column), row.pop(target_column),
                           type=row.pop(type_column, None),
                           weight=1.0 if weight is None else weight, **row)
        return store

    @classmethod
    def from_parquet(cls, nodes_path, edges_path, **kwargs):
        """:meth:`from_arrow` on two Parquet (or Arrow IPC / Feather) files."""
        from .._arrow import read_table
        return cls.from_arrow(read_table(nodes_path), read_table(edges_path), **kwargs)

    # -- vector index ---------------------------------------------------------------------
    def vector_index(self, metric="cosine"):
        """A VectorStore over the node embeddings (ids = node indices), rebuilt after changes."""
        key = ("vector_index", metric)
        if key not in self._cache:
            from ..index import VectorStore
            store = VectorStore(self.dim or 1, metric)
            rows = [i for i, e in enumerate(self._emb) if e is not None]
            if rows:
                store.add(self.features[rows], ids=np.asarray(rows, dtype=np.int64))
            self._cache[key] = store
        return self._cache[key]

    # -- persistence ----------------------------------------------------------------------
    def save(self, path):
        """Arrow node and edge tables in the checksummed generation format of the vector store."""
        for key in self._keys:
            if isinstance(key, bool) or not isinstance(key, (str, int)) or \
                    (isinstance(key, int) and not -2**63 <= key < 2**63):
                raise InvalidInput(f"only str and 64-bit int node keys can be saved, got "
                                   f"{key!r}")
        width = self._efeat_dim or 0
        nodes = pa.table({
            "key_str": [k if isinstance(k, str) else None for k in self._keys],
            "key_int": [k if isinstance(k, int) else None for k in self._keys],
            "labels": pa.array([list(lb) for lb in self._labels], pa.list_(pa.string())),
            "embedding": vectors_column(self._emb),
            "properties": _props_column(self._props)})
        edges = pa.table({
            "source": pa.array(self._src, pa.int64()), "target": pa.array(self._dst, pa.int64()),
            "type": pa.array(self._type, pa.string()), "weight": pa.array(self._weight, pa.float64()),
            "feature": vectors_column(self._efeat),
            "properties": _props_column(self._eprops)})
        with _persist.writer_lock(path):
            _persist.write_generation(
                path, FORMAT, FORMAT_VERSION,
                {"nodes.arrow": lambda p: write_ipc(nodes, p),
                 "edges.arrow": lambda p: write_ipc(edges, p)},
                {"dim": self.dim, "directed": self.directed, "nodes": self.num_nodes,
                 "edges": self.num_edges, "edge_feature_dim": width})

    @classmethod
    def info(cls, path):
        """Summary of a saved store: format, version, generation, dim, directed, nodes, edges,
        node counts per label, edge counts per type and bytes on disk (files verified)."""
        manifest, _ = _persist.read_generation(path, FORMAT, FORMAT_VERSION)
        arrays = cls.load(path).arrays()
        labels, types = {}, {}
        for lb in arrays.labels:
            for name in lb:
                labels[name] = labels.get(name, 0) + 1
        for t in arrays.edge_types:
            types[str(t)] = types.get(str(t), 0) + 1
        info = {k: manifest[k] for k in ("format", "version", "generation", "dim", "directed",
                                         "nodes", "edges")}
        info.update(labels=labels, edge_types=types, bytes=_persist.manifest_bytes(manifest))
        return info

    @classmethod
    def load(cls, path):
        """A store saved by :meth:`save` (columns are read in bulk, then checked: keys unique,
        endpoints in range, widths consistent; anything else raises CorruptFile)."""
        return _persist.load_generation(path, FORMAT, FORMAT_VERSION,
                                        lambda m, d: cls._from_generation(path, m, d))

    @classmethod
    def _from_generation(cls, path, manifest, gen):
        try:
            nodes = read_ipc(os.path.join(gen, "nodes.arrow"))
            edges = read_ipc(os.path.join(gen, "edges.arrow"))
            store = cls(manifest["dim"], directed=manifest["directed"])
            keys = [ks if ks is not None else ki for ks, ki in
                    zip(nodes.column("key_str").to_pylist(), nodes.column("key_int").to_pylist())]
            store._index = {k: i for i, k in enumerate(keys)}
            if len(store._index) != len(keys) or None in store._index:
                raise ValueError("node keys are missing or repeated")
            store._keys = keys
            store._labels = [tuple(lb) if lb else () for lb in nodes.column("labels").to_pylist()]
            store._props = _props_from_column(nodes.column("properties"))
            store._emb = vectors_from_column(nodes.column("embedding"), store.dim, "embedding")
            src = edges.column("source").to_numpy()
            dst = edges.column("target").to_numpy()
            n = len(keys)
            if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
                raise ValueError("edge endpoints outside the node table")
            store._src, store._dst = src.tolist(), dst.tolist()
            store._type = edges.column("type").to_pylist()
            store._weight = [float(w) for w in edges.column("weight").to_pylist()]
            store._eprops = _props_from_column(edges.column("properties"))
            store._efeat = vectors_from_column(edges.column("feature"),
                                                manifest.get("edge_feature_dim") or None,
                                                "edge feature")
            store._efeat_dim = next((f.shape[0] for f in store._efeat if f is not None), None)
            lengths = {len(getattr(store, a)) for a in ("_labels", "_props", "_emb")}
            elengths = {len(getattr(store, a)) for a in ("_dst", "_type", "_weight", "_eprops",
                                                        "_efeat")}
            if lengths != {n} or elengths != {len(src)} or \
                    (manifest["nodes"], manifest["edges"]) != (n, len(src)):
                raise ValueError("table lengths disagree with each other or the manifest")
        except (KeyError, IndexError, ValueError, TypeError, pa.ArrowException) as exc:
            raise CorruptFile(f"{path}: inconsistent graph files: {exc}") from None
        return store


def _labels(labels, key):
    """A node's labels as a tuple of strings (one string is one label)."""
    if isinstance(labels, str):
        return (labels,)
    try:
        as_tuple = tuple(labels)
    except TypeError:
        as_tuple = None
    if as_tuple is None or not all(isinstance(lb, str) for lb in as_tuple):
        raise InvalidInput(f"labels of node {key!r} must be a string or strings, got "
                           f"{labels!r}")
    return as_tuple


def _json_value(value):
    """NumPy scalars and arrays (common in NetworkX attributes) as JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _props_column(props):
    """JSON text per row ("{}" for the common empty dict without a json.dumps call)."""
    try:
        return pa.array([json.dumps(p, sort_keys=True, default=_json_value, allow_nan=True)
                         if p else "{}" for p in props], pa.string())
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"a property cannot be saved: {exc} (properties are stored as "
                           "JSON: numbers, strings, booleans, lists, dicts)") from None


def _props_from_column(column):
    return [json.loads(t) if t != "{}" else {} for t in column.to_pylist()]
