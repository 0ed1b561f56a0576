"""RETURN (projection, aggregation, DISTINCT), ORDER BY, SKIP and LIMIT over matched rows."""
import numpy as np

from ..._validate import integer
from ...errors import QueryError
from . import ast as A
from . import values as V
from .frame import Frame


def _aggregate(fn, values, distinct):
    values = [v for v in values if v is not None]
    if distinct:
        seen, unique = set(), []
        for v in values:
            h = V.hashable(v)
            if h not in seen:
                seen.add(h)
                unique.append(v)
        values = unique
    if fn == "count":
        return len(values)
    if fn == "collect":
        return values
    if fn in ("sum", "avg"):
        bad = next((v for v in values if not V.is_number(v)), None)
        if bad is not None:
            raise QueryError(f"{fn}() needs numbers, got {bad!r}")
        if fn == "sum":
            total = sum(values) if values else 0
            return V.int_result(total, "sum()") if isinstance(total, int) else total
        return sum(values) / len(values) if values else None
    if not values:
        return None
    pick = min if fn == "min" else max
    return pick(values, key=V.sort_key)


def _groups(key_cols, n):
    """Group id per row (first-seen order) and the first row of every group."""
    if not key_cols:
        return np.zeros(n, np.int64), np.zeros(1, np.int64)
    ids, first, gid = {}, [], np.empty(n, np.int64)
    lists = [c.tolist() for c in key_cols]
    for r in range(n):
        h = tuple(V.hashable(col[r]) for col in lists)
        g = ids.get(h)
        if g is None:
            g = ids[h] = len(first)
            first.append(r)
        gid[r] = g
    return gid, np.asarray(first, np.int64)


def _aggregated(items, frame, evaluate):
    keys = [i for i in items if not A.contains_aggregate(i.expr)]
    key_cols = [evaluate(i.expr, frame) for i in keys]
    gid, first = _groups(key_cols, frame.n)
    if keys and not frame.n:
        first = np.zeros(0, np.int64)
    computed = {}
    for item, col in zip(keys, key_cols):
        computed[item.expr] = col[first]
    aggs = {n for i in items for n in A.walk(i.expr) if A.is_aggregate(n)}
    for node in aggs:
        if isinstance(node, A.CountStar):
            counts = np.bincount(gid, minlength=len(first)) if frame.n else \
                np.zeros(len(first), np.int64)
            computed[node] = counts.astype(np.int64)
            continue
        values = evaluate(node.args[0], frame).tolist()
        per_group = [[] for _ in range(len(first))]
        for g, v in zip(gid.tolist(), values):
            per_group[g].append(v)
        computed[node] = V.column([_aggregate(node.name, vs, node.distinct) for vs in per_group])
    group_frame = Frame(len(first), computed=computed)
    return group_frame, [evaluate(i.expr, group_frame) for i in items], first


def _distinct_rows(cols, n):
    lists = [c.tolist() for c in cols]
    return distinct_rows([tuple(col[r] for col in lists) for r in range(n)])


def distinct_rows(rows):
    """Positions (int64) of the first occurrence of every distinct row (a tuple of values)."""
    seen, keep = set(), []
    for r, row in enumerate(rows):
        h = tuple(V.hashable(v) for v in row)
        if h not in seen:
            seen.add(h)
            keep.append(r)
    return np.asarray(keep, np.int64)


def _count(value, evaluate, what):
    if value is None:
        return None
    v = evaluate.param(value.name) if isinstance(value, A.Param) else value
    return integer(v, what, error=QueryError)


def skip_limit(query, evaluate):
    return _count(query.skip, evaluate, "SKIP"), _count(query.limit, evaluate, "LIMIT")


def project_with(with_, frame, evaluate):
    """The Frame WITH passes on: bare variables keep their columns (node, edge and path
    slots, renamed by AS), other items become named values; grouped when an item aggregates,
    then DISTINCT."""
    items = with_.items
    if any(A.contains_aggregate(i.expr) for i in items):
        _, cols, rows = _aggregated(items, frame, evaluate)
    else:
        cols, rows = [evaluate(i.expr, frame) for i in items], np.arange(frame.n)
    if with_.distinct:
        keep = _distinct_rows(cols, len(rows))
        cols, rows = [c[keep] for c in cols], rows[keep]
    out = Frame(len(rows))
    for item, col in zip(items, cols):
        var = item.expr.name if isinstance(item.expr, A.Var) else None
        kind = evaluate.kinds.get(var)
        if kind == "path":
            for _, slot in evaluate.paths[var]:
                out.cols[slot] = frame.cols[slot][rows]
        elif kind in ("node", "rel", "varrel"):
            out.cols[item.alias or var] = frame.cols[var][rows]
        else:
            out.computed[A.Var(item.alias or var)] = col
    return out


def project(query, frame, evaluate):
    """(column names, list of row tuples)."""
    items = query.returns
    if any(A.contains_aggregate(i.expr) for i in items):
        scope, cols, _ = _aggregated(items, frame, evaluate)
    else:
        cols = [evaluate(i.expr, frame) for i in items]
        scope = frame
        if query.distinct:
            keep = _distinct_rows(cols, frame.n)
            cols = [c[keep] for c in cols]
            scope = Frame(len(keep))
    scope = Frame(scope.n, scope.cols, scope.weights, dict(scope.computed))
    for item, col in zip(items, cols):
        scope.computed[item.expr] = col
        if item.alias:
            scope.computed[A.Var(item.alias)] = col
    order = np.arange(scope.n)
    for o in reversed(query.order_by):
        keys = evaluate(o.expr, scope).tolist()
        order = np.asarray(sorted(order.tolist(), key=lambda r: V.sort_key(keys[r]),
                                  reverse=o.descending), np.int64)
    skip, limit = skip_limit(query, evaluate)
    order = order[skip or 0:]
    if limit is not None:
        order = order[:limit]
    out = [c[order].tolist() for c in cols]
    return [i.name for i in items], list(zip(*out)) if out else []
