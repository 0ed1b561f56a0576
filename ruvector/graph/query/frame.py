"""Columnar partial matches and the expression evaluator over them.

A :class:`Frame` holds n rows: for every bound slot a column (node index, edge id, or a
(n, max_hops) edge-id matrix padded with -1 for a variable-length relationship), the ATTEND
hop weights per slot, and ``computed`` values (projected columns, aggregates) that
expressions look up before evaluating themselves.
"""
import numpy as np

from ...errors import QueryError
from . import ast as A
from . import values as V

TOTAL = "#score"
NULL_SLOT, NULL_PATH = -1, -2  # a null node or relationship; a null variable-length one


class Frame:
    __slots__ = ("n", "cols", "weights", "computed")

    def __init__(self, n, cols=None, weights=None, computed=None):
        self.n = int(n)
        self.cols = cols or {}
        self.weights = weights or {}
        self.computed = computed or {}

    def take(self, idx):
        return Frame(len(idx), {k: v[idx] for k, v in self.cols.items()},
                     {k: v[idx] for k, v in self.weights.items()},
                     {k: v[idx] for k, v in self.computed.items()})

    def row_bytes(self):
        """Bytes one row of this frame takes (every column, weight and computed value)."""
        arrays = [*self.cols.values(), *self.weights.values(), *self.computed.values()]
        return sum(int(np.prod(a.shape[1:], dtype=np.int64)) * a.itemsize for a in arrays)

    def filter(self, mask):
        return self if mask.all() else self.take(np.flatnonzero(mask))

    @staticmethod
    def concat(frames, like):
        """Row-wise concatenation (an empty frame shaped like ``like`` when none)."""
        frames = [f for f in frames if f.n] or frames[:1] or [like.take(np.zeros(0, np.int64))]
        first = frames[0]
        return Frame(sum(f.n for f in frames),
                     {k: np.concatenate([f.cols[k] for f in frames]) for k in first.cols},
                     {k: np.concatenate([f.weights[k] for f in frames]) for k in first.weights},
                     {k: np.concatenate([f.computed[k] for f in frames])
                      for k in first.computed})


class Evaluator:
    """Evaluates expressions to columns over a frame (view: GraphView, params: dict,
    kinds: slot -> kind, paths: path variable -> recipe)."""

    def __init__(self, view, params, kinds, paths):
        self.view, self.params, self.kinds, self.paths = view, params, kinds, paths
        self.ctx = None         # the running query's Context (COUNT / EXISTS subqueries)
        self.subplans = {}      # their plans, per set of bound slots

    def constant(self, expr):
        """Value of an expression without variables."""
        return self(expr, Frame(1))[0]

    def param(self, name):
        """A parameter as a plain Python value (NumPy arrays -> lists, scalars -> numbers)."""
        value = self.params[name]
        return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value

    def __call__(self, expr, frame):
        hit = frame.computed.get(expr)
        if hit is not None:
            return hit
        method = getattr(self, "_" + type(expr).__name__)
        return method(expr, frame)

    # -- leaves ----------------------------------------------------------------------------------
    def _Literal(self, e, f):
        return V.constant(e.value, f.n)

    def _Param(self, e, f):
        return V.constant(self.param(e.name), f.n)

    def _slot(self, name, f):
        if self.kinds.get(name) == "path":
            for _, slot in self.paths[name]:
                self._slot(slot, f)
            return None
        if name not in f.cols:
            raise QueryError(f"variable {name!r} is not available here (after aggregation or "
                             f"DISTINCT only returned columns can be used)")
        return f.cols[name]

    def _Var(self, e, f):
        kind = self.kinds.get(e.name)
        if kind == "path":
            self._slot(e.name, f)
            return self._paths(e.name, f)
        col = self._slot(e.name, f)
        if kind == "node":
            return _nulls(self.view.key_column[np.maximum(col, 0)], col)
        if kind == "rel":
            return V.column([None if x < 0 else self.view.relationship(x) for x in col])
        return _nulls(V.column([[self.view.relationship(x) for x in row if x >= 0]
                                for row in col]), col)

    def _paths(self, name, f):
        recipe = self.paths[name]
        null = np.zeros(f.n, bool)
        for _, slot in recipe:
            null |= null_rows(f.cols[slot])
        out = []
        for r in range(f.n):
            if null[r]:          # a path through an OPTIONAL MATCH that did not match
                out.append(None)
                continue
            node = f.cols[recipe[0][1]][r]
            nodes, rels = [self.view.keys[node]], []
            for kind, slot in recipe[1:]:
                if kind == "node":
                    continue
                edges = [f.cols[slot][r]] if kind == "rel" else \
                    [x for x in f.cols[slot][r] if x >= 0]
                for e in edges:
                    src, dst = self.view.src[e], self.view.dst[e]
                    node = dst if src == node else src
                    nodes.append(self.view.keys[node])
                    rels.append(int(e))
            out.append({"nodes": nodes, "relationships": rels})
        return V.column(out)

    # -- structure -------------------------------------------------------------------------------
    def _Property(self, e, f):
        if isinstance(e.subject, A.Var) and self.kinds.get(e.subject.name) in ("node", "rel"):
            col = self._slot(e.subject.name, f)
            kind = self.kinds[e.subject.name]
            source = self.view.node_property(e.key) if kind == "node" else \
                self.view.edge_property(e.key)
            return _nulls(V.narrow(source[np.maximum(col, 0)]), col)
        key = e.key

        def get(m):
            if m is None:
                return None
            if not isinstance(m, dict):
                raise QueryError(f"cannot read property {key!r} of {m!r}")
            return m.get(key)
        return V.map_column(get, self(e.subject, f))

    def _Subscript(self, e, f):
        return V.map_column(V.subscript, self(e.subject, f), self(e.index, f))

    def _ListExpr(self, e, f):
        if not e.items:
            return V.constant([], f.n)
        cols = [self(x, f).astype(object) for x in e.items]
        return V.column([list(row) for row in zip(*cols)])

    def _Unary(self, e, f):
        return V.unary(e.op, self(e.operand, f))

    def _IsNull(self, e, f):
        return V.is_null(self(e.operand, f), e.negated)

    def _Binary(self, e, f):
        left = self(e.left, f)
        if e.op == "IN" and not A.variables(e.right) and left.dtype.kind in "iuf":
            values = self.constant(e.right)
            if V.is_list(values) and all(V.is_number(v) for v in values):
                return np.isin(left, np.asarray(values, dtype=np.float64))
        return V.binary(e.op, left, self(e.right, f))

    def _Subquery(self, e, f):
        from .match import count_matches  # match builds on this module
        counts = count_matches(e, f, self)
        return counts if e.kind == "count" else counts > 0

    def _CountStar(self, e, f):
        raise QueryError("count(*) is only allowed in RETURN and ORDER BY")

    # -- functions -------------------------------------------------------------------------------
    def _Call(self, e, f):
        if e.name in A.AGGREGATES:
            raise QueryError(f"aggregate {e.name}() is not allowed here")
        return getattr(self, "_fn_" + e.name)(e, f)

    def _graph_arg(self, e, f, kinds):
        arg = e.args[0]
        kind = self.kinds.get(arg.name) if isinstance(arg, A.Var) else None
        if kind not in kinds:
            raise QueryError(f"{e.name}() expects a {' or '.join(kinds)} variable, got "
                             f"{type(arg).__name__}")
        return kind, self._slot(arg.name, f)

    def _fn_id(self, e, f):
        col = self._graph_arg(e, f, ("node", "rel"))[1]
        return _nulls(col.copy(), col)

    def _fn_labels(self, e, f):
        col = self._graph_arg(e, f, ("node",))[1]
        labels = self.view.arrays.labels
        return V.column([None if i < 0 else list(labels[i]) for i in col])

    def _fn_type(self, e, f):
        col = self._graph_arg(e, f, ("rel",))[1]
        return _nulls(self.view.edge_types[np.maximum(col, 0)], col)

    def _fn_score(self, e, f):
        name = TOTAL if not e.args else e.args[0].name
        if e.args:
            self._graph_arg(e, f, ("node", "rel"))
        if name not in f.weights:
            raise QueryError("score() is not available after aggregation or DISTINCT; "
                             "return it as a column first")
        return f.weights[name]

    def _fn_length(self, e, f):
        arg = e.args[0]
        if isinstance(arg, A.Var) and self.kinds.get(arg.name) == "path":
            recipe = self.paths[arg.name]
            total = np.zeros(f.n, np.int64)
            null = np.zeros(f.n, bool)
            for kind, slot in recipe:
                null |= null_rows(f.cols[slot])
                if kind == "rel":
                    total += 1
                elif kind == "varrel":
                    total += (f.cols[slot] >= 0).sum(axis=1)
            return _nulls(total, null)
        return self._fn_size(e, f)

    def _fn_size(self, e, f):
        def size(v):
            if v is None:
                return None
            if not (V.is_list(v) or isinstance(v, str)):
                raise QueryError(f"{e.name}() expects a list or string, got {v!r}")
            return len(v)
        return V.map_column(size, self(e.args[0], f))

    def _fn_coalesce(self, e, f):
        cols = [self(a, f) for a in e.args]
        return V.map_column(lambda *xs: next((x for x in xs if x is not None), None), *cols)

    def _string_fn(self, e, f, method):
        def apply(v):
            if v is None:
                return None
            if not isinstance(v, str):
                raise QueryError(f"{e.name}() expects a string, got {v!r}")
            return method(v)
        return V.map_column(apply, self(e.args[0], f))

    def _fn_tolower(self, e, f):
        return self._string_fn(e, f, str.lower)

    def _fn_toupper(self, e, f):
        return self._string_fn(e, f, str.upper)


def null_rows(col):
    """Rows whose slot is null (an OPTIONAL MATCH without a match): NULL_SLOT in a node or
    relationship column, NULL_PATH in a variable-length relationship's first cell."""
    if col.ndim == 1:
        return col == NULL_SLOT
    return col[:, 0] == NULL_PATH if col.shape[1] else np.zeros(len(col), bool)


def _nulls(values, col_or_mask):
    """``values`` with None where the slot column (or the boolean mask) marks a null."""
    null = col_or_mask if col_or_mask.dtype == bool else null_rows(col_or_mask)
    if not null.any():
        return values
    out = values.astype(object)
    out[null] = None
    return out
