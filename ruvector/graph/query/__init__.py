"""Cypher-like read queries over a GraphStore, with attention-guided traversal.

``run_query(graph, text, params)`` parses (cached), checks names and parameters, plans
(start node, index lookups, WHERE push-down, LIMIT push-down), matches column-wise on the
graph's read-only :class:`~ruvector.graph.arrays.GraphArrays` snapshot (``graph`` is a
snapshot or anything with an ``arrays()`` method, such as a GraphStore) and projects the
RETURN clause.  See README "Graph queries".
"""
import math

import numpy as np

from ..._validate import integer
from ...errors import QueryError
from . import ast
from .frame import TOTAL, Evaluator, Frame
from .match import Context, attend_setup, run_expand, run_scan, scan_candidates
from .parser import parse
from .planner import Expand, Scan, analyse, build_plan
from .project import project, skip_limit
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


def prepare(graph, text, params=None, pushdown=True):
    """(query, plan, evaluator) for a query text."""
    query = parse(text)
    params = _check_params(params)
    view = GraphView.of(graph)
    kinds, names = analyse(query, params)
    evaluate = Evaluator(view, params, kinds, {})
    plan = build_plan(query, kinds, names, view, evaluate.constant, pushdown)
    evaluate.paths = plan.paths
    return query, plan, evaluate


def _run_steps(steps, frame, ctx):
    for step in steps:                   # empty frames still run: every slot gets a column
        frame = run_expand(step, frame, ctx) if isinstance(step, Expand) else \
            run_scan(step, frame, ctx)
    return frame


def run_query(graph, text, params=None, *, max_hops=10, max_expansions=1_000_000, timeout=None,
              max_memory=MAX_MEMORY, pushdown=True):
    """Run a query; see :meth:`ruvector.graph.GraphStore.query`."""
    _check_limits(max_hops, max_expansions, timeout, max_memory)
    query, plan, evaluate = prepare(graph, text, params, pushdown)
    ctx = Context(evaluate, evaluate.view, plan.kinds, int(max_hops), int(max_expansions),
                  timeout, int(max_memory))
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
        frame = ctx.keep(_run_steps(plan.steps, start, ctx), plan.residual)
    if query.attend is not None and not query.order_by:
        frame = frame.take(np.argsort(-frame.weights[TOTAL], kind="stable"))
    columns, rows = project(query, frame, evaluate)
    ctx.stats["rows"] = len(rows)
    ctx.stats["ms"] = round(ctx.elapsed_ms(), 3)
    return QueryResult(columns, rows, ctx.stats)


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
        frame = ctx.keep(_run_steps(rest, run_scan(first, start, ctx, chunk), ctx),
                         plan.residual)
        frames.append(frame)
        have += frame.n
    return Frame.concat(frames, start)


def explain(graph, text, params=None):
    """The plan of a query as text."""
    query, plan, _ = prepare(graph, text, params)
    return plan.describe()


__all__ = ["run_query", "explain", "parse", "QueryResult", "ast"]
