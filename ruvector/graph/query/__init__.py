"""Cypher-like read queries over a GraphStore, with attention-guided traversal.

``run_query(graph, text, params)`` parses (cached), checks names and parameters, plans
(start node, index lookups, WHERE push-down, LIMIT push-down), matches column-wise on the
graph's read-only :class:`~ruvector.graph.arrays.GraphArrays` snapshot (``graph`` is a
snapshot or anything with an ``arrays()`` method, such as a GraphStore) and projects the
RETURN clause.  See README "Graph queries".
"""
import math
from dataclasses import replace

import numpy as np

from ..._validate import integer
from ...errors import QueryError
from . import ast
from .frame import TOTAL, Evaluator, Frame
from .match import (Context, attend_setup, earlier_relationships, profiled, run_optional,
                    run_scan, run_steps, scan_candidates)
from .parser import parse
from .planner import Expand, Scan, analyse, build_plan, with_scope
from .project import distinct_rows, project, project_with, skip_limit
from .result import QueryResult
from .view import GraphView
from . import values as V

FIRST_CHUNK = 64
MAX_MEMORY = 1 << 30  # bytes of match rows one step may build (max_memory)


def _check_limits(max_hops, max_expansions, timeout, max_memory):
    for name, v in (("max_hops", max_hops), ("max_expansions", max_expansions),
                    ("max_memory", max_memory)):
        integer(v, name, minimum=1, error=QueryError)
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0
                                    and math.isfinite(timeout)):
        raise QueryError(f"timeout must be a positive number of seconds or None, got {timeout!r}")


def _check_params(params):
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise QueryError(f"params must be a dict, got {type(params).__name__}")
    bad = [k for k in params if not isinstance(k, str)]
    if bad:
        raise QueryError(f"parameter names must be strings, got {bad!r}")
    for name, value in params.items():
        V.check_int64(value, f"parameter ${name}")
    return dict(params)


def prepare(graph, query, params=None, pushdown=True):
    """(plan, evaluator) for one parsed query (an ``ast.Query``)."""
    params = _check_params(params)
    view = GraphView.of(graph)
    kinds, names = analyse(query, params)
    evaluate = Evaluator(view, params, kinds, {})
    plan = build_plan(query, kinds, names, view, evaluate.constant, pushdown)
    evaluate.paths = plan.paths
    return plan, evaluate


def run_query(graph, text, params=None, *, max_hops=10, max_expansions=1_000_000, timeout=None,
              max_memory=MAX_MEMORY, pushdown=True):
    """Run a query; see :meth:`ruvector.graph.GraphStore.query`."""
    _check_limits(max_hops, max_expansions, timeout, max_memory)
    parsed = parse(text)
    limits = (int(max_hops), int(max_expansions), timeout, int(max_memory))
    if isinstance(parsed, ast.Union):
        return _run_union(parsed, graph, params, limits, pushdown)
    return _run_single(parsed, graph, params, limits, pushdown)


def _run_union(union, graph, params, limits, pushdown):
    """The parts' rows one after the other (UNION: each distinct row once); the parts must
    return the same column names, as in Cypher."""
    parts = [_run_single(q, graph, params, limits, pushdown) for q in union.queries]
    columns = parts[0].columns
    for i, part in enumerate(parts[1:], 2):
        if part.columns != columns:
            raise QueryError(f"UNION parts must return the same columns: part 1 returns "
                             f"{columns}, part {i} {part.columns}")
    rows = [row for part in parts for row in part.rows]
    if not union.all:
        rows = [rows[i] for i in distinct_rows(rows)]
    stats = {k: sum(p.stats.get(k, 0) for p in parts)
             for k in ("nodes_expanded", "edges_scanned", "ms")}
    plans = [p.plan for p in parts if p.plan is not None]
    sep = "\nUNION ALL\n" if union.all else "\nUNION\n"
    if union.queries[0].mode == "explain":
        rows = [(line,) for line in sep.join(plans).splitlines()]
    stats["rows"] = len(rows)
    return QueryResult(columns, rows, stats, plan=sep.join(plans) if plans else None)


def _run_single(query, graph, params, limits, pushdown):
    max_hops, max_expansions, timeout, max_memory = limits
    plan, evaluate = prepare(graph, query, params, pushdown)
    if query.mode == "explain":
        lines = plan.describe().splitlines()
        return QueryResult(["plan"], [(line,) for line in lines], {"rows": len(lines)},
                           plan="\n".join(lines))
    ctx = Context(evaluate, evaluate.view, plan.kinds, max_hops, max_expansions, timeout,
                  max_memory)
    evaluate.ctx = ctx
    every_step = plan.steps + [s for o in plan.optional for s in o.steps] + \
        (plan.after_with.steps if plan.after_with is not None else [])
    if query.mode == "profile":
        ctx.profile = [{"step": s.describe().split("\n")[0], "rows": 0, "expansions": 0,
                        "ms": 0.0} for s in every_step]
    start = Frame(1)
    if query.attend is not None:
        ctx.attend = attend_setup(query.attend, evaluate, evaluate.view, evaluate.params)
        start.weights[TOTAL] = np.ones(1)
    skip, limit = skip_limit(query, evaluate)
    if any(not V.truth(evaluate(c, start), "WHERE")[0] for c in plan.pre_filters):
        start = start.take(np.zeros(0, np.int64))
    if plan.limit_pushdown and start.n:
        frame = _run_chunked(plan, start, ctx, (skip or 0) + limit)
    else:
        frame = ctx.keep(run_steps(plan.steps, start, ctx), plan.residual)
    first = len(plan.steps)
    for opt in plan.optional:
        frame = run_optional(opt, frame, ctx, first)
        first += len(opt.steps)
    if query.attend is not None and not query.order_by:
        frame = frame.take(np.argsort(-frame.weights[TOTAL], kind="stable"))
    if query.with_ is not None:  # RETURN sees only what WITH passes on
        frame = project_with(query.with_, frame, evaluate)
        evaluate = Evaluator(evaluate.view, evaluate.params,
                             with_scope(query, plan.kinds), evaluate.paths)
        evaluate.ctx = ctx
        if query.with_.where is not None:
            frame = ctx.keep(frame, [query.with_.where])
        if plan.after_with is not None:  # MATCH after WITH: its own relationship uniqueness
            ctx.evaluate, ctx.kinds = evaluate, evaluate.kinds
            ctx.exempt = earlier_relationships(frame, evaluate.kinds)
            frame = ctx.keep(run_steps(plan.after_with.steps, frame, ctx, first),
                             plan.after_with.residual)
    columns, rows = project(query, frame, evaluate)
    ctx.stats["rows"] = len(rows)
    ctx.stats["ms"] = round(ctx.elapsed_ms(), 3)
    if ctx.profile is None:
        return QueryResult(columns, rows, ctx.stats)
    ctx.stats["profile"] = ctx.profile
    table = [f"  {i + 1}. {p['step']}: {p['rows']} rows, {p['expansions']} expansions, "
             f"{p['ms']:.3f} ms" for i, p in enumerate(ctx.profile)]
    return QueryResult(columns, rows, ctx.stats, plan="\n".join(
        ["Profile:", *table, f"  total: {len(rows)} rows, {ctx.stats['ms']:.3f} ms"]))


def _run_chunked(plan, start, ctx, needed):
    """LIMIT push-down: match from the first scan's candidates a chunk at a time and stop
    once ``needed`` rows exist (inside a last variable-length step too)."""
    first, rest = plan.steps[0], plan.steps[1:]
    candidates = scan_candidates(first, ctx)
    frames, have, pos, size = [], 0, 0, FIRST_CHUNK
    last = rest[-1] if rest else None
    budgeted = not plan.residual and (
        (isinstance(last, Expand) and last.rel.var_length) or
        (isinstance(last, Scan) and not last.bound))
    while not frames or (pos < len(candidates) and have < needed):
        chunk = candidates[pos:pos + size]
        pos, size = pos + len(chunk), size * 2
        if budgeted:  # the last step stops once the rows exist
            ctx.row_budget = (last, needed - have)
        scanned = profiled(ctx, 0, lambda chunk=chunk: run_scan(first, start, ctx, chunk))
        frame = ctx.keep(run_steps(rest, scanned, ctx, first=1), plan.residual)
        frames.append(frame)
        have += frame.n
    return Frame.concat(frames, start)


def trace(graph, text, params=None, *, max_hops=10, max_expansions=1_000_000, timeout=None,
          max_memory=MAX_MEMORY):
    """The matches of one ``MATCH ... ATTEND BY ... RETURN ...`` query as paths, for drawing
    the traversal: a list of ``{"paths": [{"nodes": [keys], "relationships": [edge ids]},
    one per comma-separated pattern], "score": score()}``, in the order RETURN would give
    them (ORDER BY, SKIP and LIMIT apply; with DISTINCT or an aggregate in RETURN, every
    match, in descending ``score()``)."""
    _check_limits(max_hops, max_expansions, timeout, max_memory)
    query = parse(text)
    if isinstance(query, ast.Union) or query.with_ is not None or query.optional:
        raise QueryError("a traversal is drawn from one MATCH ... ATTEND BY ... RETURN query "
                         "(no UNION, WITH or OPTIONAL MATCH)")
    if query.attend is None:
        raise QueryError("a traversal is drawn from an ATTEND BY query: add "
                         "ATTEND BY $q (or a node variable) before RETURN")
    # Backquoted names may hold spaces, so these cannot clash with a variable of the query.
    patterns = tuple(replace(p, path_var=p.path_var or f" path {i}")
                     for i, p in enumerate(query.patterns))
    returns = tuple(ast.ReturnItem(ast.Var(p.path_var), text=p.path_var) for p in patterns) + \
        (ast.ReturnItem(ast.Call("score", ()), text="score()"),)
    grouped = query.distinct or any(ast.contains_aggregate(r.expr) for r in query.returns)
    aliases = {r.alias: r.expr for r in query.returns if r.alias}
    order = () if grouped else tuple(
        replace(o, expr=aliases.get(o.expr.name, o.expr)) if isinstance(o.expr, ast.Var) else o
        for o in query.order_by)
    query = replace(query, patterns=patterns, returns=returns, distinct=False, mode="run",
                    order_by=order, skip=None if grouped else query.skip,
                    limit=None if grouped else query.limit)
    limits = (int(max_hops), int(max_expansions), timeout, int(max_memory))
    res = _run_single(query, graph, params, limits, True)
    return [{"paths": list(row[:-1]), "score": float(row[-1])} for row in res.rows]


def explain(graph, text, params=None):
    """The plan of a query as text (of each part of a UNION)."""
    parsed = parse(text)
    if isinstance(parsed, ast.Union):
        return ("\nUNION ALL\n" if parsed.all else "\nUNION\n").join(
            prepare(graph, q, params)[0].describe() for q in parsed.queries)
    return prepare(graph, parsed, params)[0].describe()


__all__ = ["run_query", "trace", "explain", "parse", "QueryResult", "ast"]
