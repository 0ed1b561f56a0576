"""Executes a match plan over the GraphView's CSR arrays, column-wise (no per-row Python
in the expansion), with limits on expansions and time and ATTEND top-k per hop."""
import math
import time

import numpy as np

from ..._validate import integer
from ...errors import QueryError, QueryLimitExceeded
from . import ast as A
from . import values as V
from .frame import NULL_PATH, NULL_SLOT, TOTAL, Evaluator, Frame, null_rows
from .planner import Expand, subquery_plan

VAR_CHUNK = 64  # paths grown at a time by the LIMIT push-down into variable-length steps
ROW = "#row"     # the input row of an OPTIONAL MATCH's partial matches


class Context:
    """Limits and statistics of one query run."""

    def __init__(self, evaluate, view, kinds, max_hops, max_expansions, timeout, max_memory):
        self.evaluate, self.view, self.kinds = evaluate, view, kinds
        self.max_hops, self.max_expansions, self.timeout = max_hops, max_expansions, timeout
        self.max_memory = max_memory
        self.t0 = time.perf_counter()
        self.stats = {"nodes_expanded": 0, "edges_scanned": 0, "rows": 0, "ms": 0.0}
        self.attend = None                  # (Q (G, D) float32, q slot or None, scale, k)
        self.profile = None                 # per-step rows / expansions / ms under PROFILE
        self.exempt = frozenset()           # relationship slots of earlier clauses, which
                                            # an OPTIONAL MATCH may reuse
        self.row_budget = None              # (step, rows wanted): LIMIT push-down into the
                                            # last step (variable-length or cartesian)

    def elapsed_ms(self):
        return 1000.0 * (time.perf_counter() - self.t0)

    def charge(self, nodes, edges, row_bytes):
        """Count work about to be done (``edges`` new rows of ``row_bytes`` each); raise
        before doing it when over a limit."""
        self.stats["nodes_expanded"] += int(nodes)
        self.stats["edges_scanned"] += int(edges)
        self.check_time()
        if self.stats["edges_scanned"] > self.max_expansions:
            raise QueryLimitExceeded(
                f"query passed max_expansions={self.max_expansions} "
                f"({self.stats['edges_scanned']} expansions)", dict(self.stats))
        if int(edges) * int(row_bytes) > self.max_memory:
            raise QueryLimitExceeded(
                f"the next step would hold {int(edges)} rows of {int(row_bytes)} bytes, more "
                f"than max_memory={self.max_memory} bytes", dict(self.stats))

    def check_time(self):
        self.stats["ms"] = round(self.elapsed_ms(), 3)
        if self.timeout is not None and self.elapsed_ms() > 1000.0 * self.timeout:
            raise QueryLimitExceeded(f"query passed timeout={self.timeout} s", dict(self.stats))

    def keep(self, frame, filters):
        for c in filters:
            if not frame.n:
                break
            self.check_time()
            frame = frame.filter(V.truth(self.evaluate(c, frame)))
        return frame


def run_steps(steps, frame, ctx, first=0):
    """Run ``steps`` (numbered from ``first`` in the plan) on ``frame``."""
    for i, step in enumerate(steps, first):  # empty frames still run: every slot gets a column
        frame = profiled(ctx, i, lambda step=step, frame=frame: (
            run_expand(step, frame, ctx) if isinstance(step, Expand) else
            run_scan(step, frame, ctx)))
    return frame


def profiled(ctx, i, run):
    """``run()``, adding its rows, expansions and milliseconds to step i under PROFILE."""
    if ctx.profile is None:
        return run()
    edges, t0 = ctx.stats["edges_scanned"], time.perf_counter()
    frame = run()
    entry = ctx.profile[i]
    entry["rows"] += frame.n
    entry["expansions"] += ctx.stats["edges_scanned"] - edges
    entry["ms"] = round(entry["ms"] + 1000 * (time.perf_counter() - t0), 3)
    return frame


# -- scan --------------------------------------------------------------------------------------
def scan_candidates(step, ctx):
    view = ctx.view
    if step.index is not None:
        key, value = step.index
        cand = view.lookup(key, ctx.evaluate.constant(value))
    else:
        cand = np.arange(view.num_nodes, dtype=np.int64)
    if step.node.labels:
        cand = cand[view.label_mask(step.node.labels)[cand]]
    return cand


def run_scan(step, frame, ctx, candidates=None):
    if step.bound:
        if step.node.labels:
            frame = frame.filter(ctx.view.label_mask(step.node.labels)[frame.cols[step.slot]])
        return ctx.keep(frame, step.filters)
    cand = scan_candidates(step, ctx) if candidates is None else candidates
    filters = step.filters
    if TOTAL not in frame.weights and frame.n > 1:
        # conditions on the scanned node alone filter the candidates before the product
        own = [c for c in filters if A.variables(c) <= {step.slot}]
        if own:
            ctx.charge(0, len(cand), 16)
            cand = ctx.keep(Frame(len(cand), {step.slot: cand}), own).cols[step.slot]
            filters = [c for c in filters if not A.variables(c) <= {step.slot}]
    budget = ctx.row_budget[1] if ctx.row_budget and ctx.row_budget[0] is step else None
    if budget is None or not frame.n:
        return _cartesian(step, frame, cand, filters, ctx)
    # LIMIT push-down into a last cartesian scan: candidates a growing chunk at a time
    parts, have, pos, size = [], 0, 0, max(1, -(-budget // frame.n))
    while not parts or (pos < len(cand) and have < budget):
        parts.append(_cartesian(step, frame, cand[pos:pos + size], filters, ctx))
        have, pos, size = have + parts[-1].n, pos + size, 2 * size
    return Frame.concat(parts, frame)


def _cartesian(step, frame, cand, filters, ctx):
    """Every row of ``frame`` with every candidate node bound to the step's slot, kept
    where ``filters`` hold."""
    ctx.charge(0, frame.n * len(cand), frame.row_bytes() + 8)
    rows = np.repeat(np.arange(frame.n), len(cand))
    out = frame.take(rows)
    out.cols[step.slot] = np.tile(cand, frame.n)
    if TOTAL in out.weights:
        out.weights[step.slot] = np.ones(out.n)
    return ctx.keep(out, filters)


# -- expand ------------------------------------------------------------------------------------
def _gather(nodes, adjacency, ctx, row_bytes):
    """All edges leaving ``nodes``: (row of the node, neighbour, edge id); each becomes a
    row of ``row_bytes`` (charged against the limits before anything is allocated)."""
    indptr, nbr, eid = adjacency
    starts, counts = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    total = int(counts.sum())
    ctx.charge(len(nodes), total, row_bytes + 4 * 8)
    rows = np.repeat(np.arange(len(nodes)), counts)
    pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + \
        np.repeat(starts, counts)
    return rows, nbr[pos], eid[pos]


def _edge_free(frame, parents, edges, ctx, own=None):
    """Rows whose new edge is not used elsewhere in the match (relationship uniqueness)."""
    ok = np.ones(len(edges), bool)
    for slot, col in frame.cols.items():
        kind = None if slot in ctx.exempt else ctx.kinds.get(slot)
        if kind == "varrel":
            ok &= (col[parents] != edges[:, None]).all(axis=1)
        elif kind == "rel":
            ok &= col[parents] != edges
    if own is not None and own.shape[1]:
        ok &= (own != edges[:, None]).all(axis=1)
    return ok


def _attend(parents, cand_nodes, frame, ctx):
    """Keep the top-k candidates per parent row; returns (kept positions, weights)."""
    from ...kernels.segment import segment_softmax_topk
    Q, q_slot, scale, k = ctx.attend
    ptr = np.zeros(frame.n + 1, np.int64)
    np.cumsum(np.bincount(parents, minlength=frame.n), out=ptr[1:])
    if q_slot is None:
        q_row = np.zeros(frame.n, np.int64)
    elif q_slot not in frame.cols:
        raise QueryError(f"ATTEND BY {q_slot}: the variable is not bound before this hop")
    else:
        q_row = frame.cols[q_slot]
    weights, keep = segment_softmax_topk(ctx.view.features, cand_nodes, ptr, Q, q_row, scale, k)
    kept = np.flatnonzero(keep)
    return kept, weights[kept]


def run_expand(step, frame, ctx):
    adjacency = ctx.view.adjacency(step.direction, step.rel.types)
    if step.rel.var_length:
        if step.rel.shortest:
            return _expand_shortest(step, frame, adjacency, ctx)
        if ctx.row_budget is not None and ctx.row_budget[0] is step:
            return _expand_var_until(step, frame, adjacency, ctx, ctx.row_budget[1])
        return _expand_var(step, frame, adjacency, ctx)
    rows, nodes, edges = _gather(frame.cols[step.src], adjacency, ctx, frame.row_bytes())
    ok = _edge_free(frame, rows, edges, ctx) & _node_ok(step, frame, rows, nodes, ctx)
    rows, nodes, edges = rows[ok], nodes[ok], edges[ok]
    keep = np.ones(len(rows), bool)
    if step.filters:
        candidates = _bind(step, frame, rows, edges, nodes)
        for c in step.filters:
            keep[keep] = V.truth(ctx.evaluate(c, candidates.filter(keep)))
    if ctx.attend is not None:
        kept, w = _attend(rows[keep], nodes[keep], frame, ctx)
        sel = np.flatnonzero(keep)[kept]
        return _bind(step, frame, rows[sel], edges[sel], nodes[sel], w, w)
    return _bind(step, frame, rows[keep], edges[keep], nodes[keep])


def _bind(step, frame, parents, rel_col, nodes, hop_w=None, total_w=None):
    """Rows of a hop's matches: the parent rows plus the relationship and destination
    columns, and with ATTEND the hop weight and the running product of weights."""
    out = frame.take(parents)
    out.cols[step.rel_slot] = rel_col
    if not step.dst_bound:
        out.cols[step.dst] = nodes
    if hop_w is not None:
        out.weights[step.dst] = out.weights[step.rel_slot] = hop_w
        out.weights[TOTAL] = out.weights[TOTAL] * total_w
    return out


def _node_ok(step, frame, rows, nodes, ctx):
    ok = np.ones(len(nodes), bool)
    if step.node.labels:
        ok &= ctx.view.label_mask(step.node.labels)[nodes]
    if step.dst_bound:
        ok &= frame.cols[step.dst][rows] == nodes
    return ok


def _hop_limit(step, ctx):
    hi = step.rel.max_hops
    if hi is None:
        return ctx.max_hops
    if hi > ctx.max_hops:
        raise QueryError(f"*{step.rel.min_hops}..{hi} asks for more than max_hops="
                         f"{ctx.max_hops} hops; raise max_hops to run it")
    return hi


def _edge_props_ok(step, edges, ctx):
    ok = np.ones(len(edges), bool)
    for key, value in step.rel.properties:
        if A.variables(value):
            raise QueryError("a variable-length relationship's property map may only use "
                             "literals and parameters")
        col = ctx.view.edge_property(key)[edges]
        ok &= V.truth(V.binary("=", V.narrow(col), V.constant(ctx.evaluate.constant(value),
                                                               len(edges))))
    return ok


def _expand_var(step, frame, adjacency, ctx):
    """Variable-length hops: the frontier grows one edge at a time (edges unique per path
    and against the rest of the match); rows of length min..max are emitted.  With ATTEND
    each hop keeps the top-k candidates of every partial match."""
    if ctx.attend is None:
        return _breadth_first(step, frame, adjacency, ctx, lambda *hop: hop[:3] + (None,))

    def attend(rows, nodes, edges, parents, cur):
        sub = Frame(len(cur), {k: v[parents] for k, v in frame.cols.items()})
        kept, w = _attend(rows, nodes, sub, ctx)
        return rows[kept], nodes[kept], edges[kept], w
    return _breadth_first(step, frame, adjacency, ctx, attend)


def _expand_shortest(step, frame, adjacency, ctx):
    """shortestPath / allShortestPaths: breadth first from every row's start node; a node is
    reached only at its smallest depth (so every path is simple), and a row is emitted for
    each end node that passes the step's constraints at a depth within min..max: one path
    per (row, end node) for shortestPath (the first found), every shortest one for all."""
    if ctx.attend is not None:
        raise QueryError("ATTEND cannot steer shortestPath / allShortestPaths")
    n = ctx.view.num_nodes
    seen = [np.arange(frame.n) * n + frame.cols[step.src]]  # (row, node) pairs reached

    def first_visits(rows, nodes, edges, parents, cur):
        keys = parents[rows] * n + nodes
        fresh = ~np.isin(keys, seen[0])
        pick = np.flatnonzero(fresh)
        if step.rel.shortest == "one":  # one path per (row, node): the first found
            pick = pick[np.sort(np.unique(keys[pick], return_index=True)[1])]
        seen[0] = np.union1d(seen[0], keys[pick])
        return rows[pick], nodes[pick], edges[pick], None
    return _breadth_first(step, frame, adjacency, ctx, first_visits)


def _breadth_first(step, frame, adjacency, ctx, prune):
    """Paths grown one hop at a time from every row's start node, up to the hop limit;
    ``prune(rows, nodes, edges, parents, cur)`` filters each hop's extensions and returns
    them with their ATTEND weights (or None).  Rows of length min..max are emitted."""
    hi = _hop_limit(step, ctx)
    parents = np.arange(frame.n)
    cur = frame.cols[step.src]
    path = np.zeros((frame.n, 0), np.int64)
    hop_w = np.ones(frame.n) if ctx.attend is not None else None
    prod_w = np.ones(frame.n)
    emitted = []
    for h in range(0, hi + 1):
        if h:
            hop = _next_hop(step, frame, adjacency, ctx, parents, cur, path)
            rows, nodes, edges, w = prune(*hop, parents, cur)
            if w is not None:
                hop_w, prod_w = w, prod_w[rows] * w
            parents, cur = parents[rows], nodes
            path = np.concatenate([path[rows], edges[:, None]], axis=1)
        if h >= step.rel.min_hops and len(cur):
            emitted.append(_emit(step, frame, parents, cur, path, hi, hop_w, prod_w, ctx))
        if not len(cur):
            break
    if not emitted:                      # an empty frame with the step's columns
        emitted.append(_emit(step, frame, parents[:0], cur[:0], path[:0], hi,
                             None if hop_w is None else hop_w[:0], prod_w[:0], ctx))
    return Frame.concat(emitted, frame)


def _next_hop(step, frame, adjacency, ctx, parents, cur, path):
    """(row, neighbour, edge) of every edge that extends the paths ``path`` ending at
    ``cur`` without reusing an edge of the path or of the rest of the match."""
    rows, nodes, edges = _gather(cur, adjacency, ctx, frame.row_bytes() + 8 * path.shape[1])
    ok = _edge_free(frame, parents[rows], edges, ctx, own=path[rows]) & \
        _edge_props_ok(step, edges, ctx)
    return rows[ok], nodes[ok], edges[ok]


def _expand_var_until(step, frame, adjacency, ctx, budget):
    """LIMIT push-down for a last variable-length step: paths are grown depth first,
    VAR_CHUNK at a time, and growth stops once ``budget`` rows exist, so the work and memory
    follow the rows the answer needs, not every path (without ORDER BY, row order is free)."""
    hi = _hop_limit(step, ctx)
    stack = [(0, np.arange(frame.n), frame.cols[step.src], np.zeros((frame.n, 0), np.int64))]
    emitted, have = [], 0
    while stack and have < budget:
        h, parents, cur, path = stack.pop()
        if h >= step.rel.min_hops:
            emitted.append(_emit(step, frame, parents, cur, path, hi, None, None, ctx))
            have += emitted[-1].n
        if h < hi and have < budget:
            rows, nodes, edges = _next_hop(step, frame, adjacency, ctx, parents, cur, path)
            grown = np.concatenate([path[rows], edges[:, None]], axis=1)
            for lo in reversed(range(0, len(rows), VAR_CHUNK)):  # first chunk on top
                part = slice(lo, lo + VAR_CHUNK)
                stack.append((h + 1, parents[rows[part]], nodes[part], grown[part]))
    if not emitted:
        emitted.append(_emit(step, frame, np.zeros(0, np.int64), frame.cols[step.src][:0],
                             np.zeros((0, 0), np.int64), hi, None, None, ctx))
    return Frame.concat(emitted, frame)


def _emit(step, frame, parents, nodes, path, width, hop_w, prod_w, ctx):
    ok = _node_ok(step, frame, parents, nodes, ctx)
    parents, nodes, path = parents[ok], nodes[ok], path[ok]
    matrix = np.full((len(nodes), width), -1, np.int64)
    ordered = path[:, ::-1] if step.reverse else path
    matrix[:, :path.shape[1]] = ordered
    weighted = hop_w is not None
    out = _bind(step, frame, parents, matrix, nodes, hop_w[ok] if weighted else None,
                prod_w[ok] if weighted else None)
    return ctx.keep(out, step.filters)


def earlier_relationships(frame, kinds):
    """The relationship slots bound in ``frame``: a later MATCH clause may walk them again."""
    return frozenset(s for s in frame.cols if kinds.get(s) in ("rel", "varrel"))


def _seed(frame, slots):
    """The rows of ``frame`` whose ``slots`` are all non-null (a null variable matches
    nothing), with their row numbers in a ROW column."""
    usable = np.ones(frame.n, bool)
    for slot in slots:
        usable &= ~null_rows(frame.cols[slot])
    seed = frame.take(np.flatnonzero(usable))
    seed.cols[ROW] = np.flatnonzero(usable)
    return seed


def run_optional(opt, frame, ctx, first):
    """OPTIONAL MATCH: every row of ``frame`` with each match of ``opt``'s steps (numbered
    from ``first``), and rows without one once, their new slots null (NULL_SLOT, or
    NULL_PATH rows for variable-length relationships); input order kept."""
    seed = _seed(frame, opt.needs)
    outer, ctx.exempt = ctx.exempt, earlier_relationships(frame, ctx.kinds)
    try:
        matched = ctx.keep(run_steps(opt.steps, seed, ctx, first), opt.residual)
    finally:
        ctx.exempt = outer
    hit = np.zeros(frame.n, bool)
    hit[matched.cols[ROW]] = True
    missing = frame.take(np.flatnonzero(~hit))
    missing.cols[ROW] = np.flatnonzero(~hit)
    for slot in opt.new:
        if slot in matched.cols:
            col = matched.cols[slot]
            missing.cols[slot] = np.full((missing.n,) + col.shape[1:],
                                         NULL_PATH if col.ndim == 2 else NULL_SLOT, np.int64)
    out = Frame.concat([matched, missing], matched)
    out = out.take(np.argsort(out.cols.pop(ROW), kind="stable"))
    return out


def count_matches(sub, frame, evaluate):
    """Matches of a COUNT / EXISTS subquery per row of ``frame`` (int64 (n,)): its patterns
    are planned once per set of bound outer slots and run over the rows like an OPTIONAL
    MATCH (outer relationships may be walked again; a null outer variable matches nothing)."""
    ctx = evaluate.ctx
    if ctx is None:
        raise QueryError("COUNT { } and EXISTS { } need a row to match from (use them in "
                         "WHERE, WITH or RETURN)")
    key = (sub, frozenset(frame.cols))
    if key not in evaluate.subplans:
        evaluate.subplans[key] = subquery_plan(sub, evaluate.kinds, frame.cols, ctx.view,
                                               evaluate.constant)
    steps, residual, kinds, paths = evaluate.subplans[key]
    inner = Evaluator(evaluate.view, evaluate.params, kinds, {**evaluate.paths, **paths})
    inner.ctx, inner.subplans = ctx, evaluate.subplans
    sub_ctx = Context(inner, ctx.view, kinds, ctx.max_hops, ctx.max_expansions, ctx.timeout,
                      ctx.max_memory)
    sub_ctx.stats, sub_ctx.t0 = ctx.stats, ctx.t0   # one budget for the whole query
    sub_ctx.exempt = earlier_relationships(frame, kinds)
    seed = _seed(frame, sub.pattern_variables & set(frame.cols))
    matched = sub_ctx.keep(run_steps(steps, seed, sub_ctx), residual)
    return np.bincount(matched.cols[ROW], minlength=frame.n).astype(np.int64)


def attend_setup(attend, evaluate, view, params):
    """(Q, q slot, scale, k) for ATTEND BY ... TOP k TEMPERATURE t."""
    top = attend.top if isinstance(attend.top, int) else evaluate.param(attend.top.name)
    top = integer(top, "ATTEND TOP", minimum=1, error=QueryError)
    t = attend.temperature
    if not (t > 0 and math.isfinite(t)):
        raise QueryError(f"ATTEND TEMPERATURE must be positive and finite, got {t!r}")
    X = view.features
    D = X.shape[1]
    scale = 1.0 / (math.sqrt(D) * t)
    if isinstance(attend.source, A.Var):
        return X, attend.source.name, scale, int(top)
    name = attend.source.name
    raw = params[name]
    if isinstance(raw, (str, bytes)) or V.is_number(raw) or raw is None:
        raise QueryError(f"ATTEND BY ${name} needs a vector of {D} numbers, got {raw!r}")
    try:
        q = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise QueryError(f"ATTEND BY ${name} needs a vector of {D} numbers") from None
    if q.shape != (D,):
        raise QueryError(f"ATTEND BY ${name} has shape {q.shape}; the graph's embeddings "
                         f"have width {D}")
    if not np.isfinite(q).all():
        raise QueryError(f"ATTEND BY ${name} contains NaN or Inf")
    return q.astype(np.float32).reshape(1, D), None, scale, int(top)
