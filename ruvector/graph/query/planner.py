"""Semantic checks and the match plan: where each pattern starts, the hops that follow, and
the WHERE conjuncts pushed to the earliest step that binds all their variables."""
from dataclasses import dataclass, field
from typing import Optional

from ...errors import QueryError
from . import ast as A

FUNCTIONS = {  # name -> (min args, max args)
    "id": (1, 1), "labels": (1, 1), "type": (1, 1), "length": (1, 1), "size": (1, 1),
    "coalesce": (1, 64), "tolower": (1, 1), "toupper": (1, 1), "score": (0, 1),
    "count": (1, 1), "sum": (1, 1), "avg": (1, 1), "min": (1, 1), "max": (1, 1),
    "collect": (1, 1),
}


@dataclass
class Scan:
    """Bind ``slot`` to the nodes matching ``node`` (cartesian product with the rows so far),
    or, when the slot is already bound, keep the rows whose node matches."""
    slot: str
    node: A.NodePattern
    bound: bool = False
    index: Optional[tuple] = None            # (property key, Expr) looked up in a hash index
    filters: list = field(default_factory=list)

    def describe(self):
        how = "filter bound" if self.bound else (
            f"index lookup {self.index[0]} = {_show(self.index[1])}" if self.index
            else ("label scan" if self.node.labels else "all-nodes scan"))
        return f"Scan {self.slot}{_labels(self.node.labels)} [{how}]" + _filters(self.filters)


@dataclass
class Expand:
    """Step from ``src`` over ``rel`` to ``dst``; ``direction`` is relative to the step, which
    walks the pattern backwards when ``reverse``."""
    src: str
    rel_slot: str
    dst: str
    rel: A.RelPattern
    node: A.NodePattern
    direction: str
    reverse: bool
    dst_bound: bool
    attend: bool = False
    filters: list = field(default_factory=list)

    def describe(self):
        left, right = {"out": ("-", "->"), "in": ("<-", "-"), "both": ("-", "-")}[self.direction]
        hops = ""
        if self.rel.var_length:
            hops = f"*{self.rel.min_hops}..{'' if self.rel.max_hops is None else self.rel.max_hops}"
            if self.rel.shortest:
                hops += " shortest" if self.rel.shortest == "one" else " all shortest"
        types = ":" + "|".join(self.rel.types) if self.rel.types else ""
        into = " (join on bound node)" if self.dst_bound else ""
        att = " ATTEND top-k" if self.attend else ""
        return (f"Expand ({self.src}){left}[{self.rel_slot}{types}{hops}]{right}"
                f"({self.dst}{_labels(self.node.labels)}){into}{att}" + _filters(self.filters))


@dataclass
class OptionalPlan:
    """Steps of one OPTIONAL MATCH over the rows so far; ``new``: the slots it binds (null
    in rows without a match); ``needs``: earlier slots it reads (a null one: no match)."""
    steps: list
    residual: list
    new: list
    needs: list


@dataclass
class Plan:
    steps: list
    pre_filters: list                        # conjuncts without variables
    residual: list                           # conjuncts evaluated after matching
    kinds: dict                              # slot -> "node" | "rel" | "varrel" | "path"
    paths: dict                              # path variable -> [(kind, slot), ...]
    limit_pushdown: bool
    optional: list = field(default_factory=list)   # OptionalPlan per OPTIONAL MATCH
    after_with: Optional[OptionalPlan] = None      # the MATCH after WITH (rows must match)

    def describe(self):
        lines = ["Plan:"]
        lines += [f"  pre-filter {_show(c)}" for c in self.pre_filters]
        lines += [f"  {i + 1}. {s.describe()}" for i, s in enumerate(self.steps)]
        lines += [f"  residual filter {_show(c)}" for c in self.residual]
        n = len(self.steps)
        for o in self.optional:
            lines.append("  optional (rows without a match keep nulls):")
            lines += [f"  {n + i + 1}. {s.describe()}" for i, s in enumerate(o.steps)]
            lines += [f"  residual filter {_show(c)}" for c in o.residual]
            n += len(o.steps)
        if self.after_with is not None:
            lines.append("  after WITH:")
            lines += [f"  {n + i + 1}. {s.describe()}"
                      for i, s in enumerate(self.after_with.steps)]
            lines += [f"  residual filter {_show(c)}" for c in self.after_with.residual]
        if self.limit_pushdown:
            lines.append("  LIMIT pushed down: matching stops once SKIP + LIMIT rows exist")
        return "\n".join(lines)


def _labels(labels):
    return ":" + "|".join(labels) if labels else ""


def _filters(filters):
    return "".join(f"\n       filter {_show(c)}" for c in filters)


def _show(expr):
    """Compact text of an expression for EXPLAIN."""
    if isinstance(expr, A.Literal):
        return repr(expr.value)
    if isinstance(expr, A.Param):
        return f"${expr.name}"
    if isinstance(expr, A.Var):
        return expr.name
    if isinstance(expr, A.Property):
        return f"{_show(expr.subject)}.{expr.key}"
    if isinstance(expr, A.Binary):
        return f"({_show(expr.left)} {expr.op.replace('_', ' ')} {_show(expr.right)})"
    if isinstance(expr, A.Unary):
        return f"{expr.op} {_show(expr.operand)}"
    if isinstance(expr, A.IsNull):
        return f"{_show(expr.operand)} IS {'NOT ' if expr.negated else ''}NULL"
    if isinstance(expr, A.Call):
        return f"{expr.name}({', '.join(_show(a) for a in expr.args)})"
    if isinstance(expr, A.ListExpr):
        return "[" + ", ".join(_show(a) for a in expr.items) + "]"
    if isinstance(expr, A.CountStar):
        return "count(*)"
    if isinstance(expr, A.Subscript):
        return f"{_show(expr.subject)}[{_show(expr.index)}]"
    return type(expr).__name__


# -- semantic analysis -------------------------------------------------------------------------
def slot_names(query, prefix="#"):
    """Slot per pattern element: its variable, or a hidden '#n<p>_<i>' / '#r<p>_<i>' name."""
    kinds, names = {}, []
    for p, pat in enumerate(query.all_patterns):
        node_slots, rel_slots = [], []
        for i, node in enumerate(pat.nodes):
            slot = node.var or f"{prefix}n{p}_{i}"
            if kinds.get(slot, "node") != "node":
                raise QueryError(f"variable {slot!r} is used both as a node and a relationship")
            kinds[slot] = "node"
            node_slots.append(slot)
        for i, rel in enumerate(pat.rels):
            slot = rel.var or f"{prefix}r{p}_{i}"
            if slot in kinds:
                raise QueryError(f"variable {slot!r} is bound twice in MATCH" if kinds[slot] != "node"
                                 else f"variable {slot!r} is used both as a node and a relationship")
            kinds[slot] = "varrel" if rel.var_length else "rel"
            rel_slots.append(slot)
        if pat.path_var:
            if pat.path_var in kinds:
                raise QueryError(f"path variable {pat.path_var!r} is already bound")
            kinds[pat.path_var] = "path"
        names.append((node_slots, rel_slots))
    return kinds, names


def check_expression(expr, kinds, where, aggregates_ok=False):
    for node in A.walk(expr):
        if isinstance(node, A.Subquery):
            inner, _ = subquery_kinds(node, kinds)
            if node.where is not None:
                check_expression(node.where, inner, f"{node.kind.upper()} {{...}} WHERE")
            continue
        if isinstance(node, A.Var) and node.name not in kinds:
            at = f" at line {node.line}, column {node.column}" if node.line else ""
            raise QueryError(f"unknown variable {node.name!r} in {where}{at}", node.line,
                             node.column)
        if isinstance(node, A.Call):
            if node.name not in FUNCTIONS:
                raise QueryError(f"unknown function {node.name}() in {where}")
            lo, hi = FUNCTIONS[node.name]
            if not lo <= len(node.args) <= hi:
                raise QueryError(f"{node.name}() takes {lo if lo == hi else f'{lo} to {hi}'} "
                                 f"argument(s), got {len(node.args)}")
            if node.distinct and node.name not in A.AGGREGATES:
                raise QueryError(f"DISTINCT is only allowed inside aggregates, not {node.name}()")
        if A.is_aggregate(node):
            if not aggregates_ok:
                raise QueryError(f"aggregate functions are not allowed in {where}")
            if any(A.is_aggregate(n) for arg in A.children(node) for n in A.walk(arg)):
                raise QueryError(f"aggregate functions cannot be nested ({where})")


def params_used(query):
    exprs = [query.where] if query.where is not None else []
    exprs += [i.expr for i in query.returns] + [o.expr for o in query.order_by]
    if query.with_ is not None:
        w = query.with_
        exprs += [i.expr for i in w.items] + [e for e in (w.where, w.then_where) if e is not None]
        for pat in w.then:
            for elem in pat.nodes + pat.rels:
                exprs += [v for _, v in elem.properties]
    exprs += [o.where for o in query.optional if o.where is not None]
    for pat in query.all_patterns:
        for elem in pat.nodes + pat.rels:
            exprs += [v for _, v in elem.properties]
    extra = [query.skip, query.limit] + ([query.attend.source, query.attend.top]
                                         if query.attend else [])
    exprs += [x for x in extra if isinstance(x, A.Expr)]
    return {n.name for e in exprs for n in A.walk(e) if isinstance(n, A.Param)}


def analyse(query, params):
    """Check names, functions, aggregates and parameters; returns (kinds, slot names)."""
    kinds, names = slot_names(query)
    missing = sorted(params_used(query) - set(params))
    if missing:
        raise QueryError("missing parameter(s): " + ", ".join(f"${m}" for m in missing))
    if query.where is not None:
        check_expression(query.where, kinds, "WHERE")
    for o in query.optional:
        if o.where is not None:
            check_expression(o.where, kinds, "OPTIONAL MATCH ... WHERE")
    if query.optional and query.attend is not None:
        raise QueryError("ATTEND BY and OPTIONAL MATCH cannot be combined yet")
    for pat in query.all_patterns:
        for elem in pat.nodes + pat.rels:
            for _, v in elem.properties:
                check_expression(v, kinds, "a property map")
    match_kinds = kinds
    if query.with_ is not None:
        kinds = with_scope(query, kinds)
    for item in query.returns:
        check_expression(item.expr, kinds, "RETURN", aggregates_ok=True)
    aliases = [i.name for i in query.returns]
    dup = {a for a in aliases if aliases.count(a) > 1}
    if dup:
        raise QueryError(f"RETURN has duplicate column name(s) {sorted(dup)}; use AS")
    scope = dict(kinds, **{i.alias: "value" for i in query.returns if i.alias})
    for o in query.order_by:
        check_expression(o.expr, scope, "ORDER BY", aggregates_ok=True)
    with_exprs = [] if query.with_ is None else [i.expr for i in query.with_.items]
    uses_score = any(isinstance(n, A.Call) and n.name == "score"
                     for e in [query.where, *(i.expr for i in query.returns), *with_exprs,
                               *(o.expr for o in query.order_by)] if e is not None
                     for n in A.walk(e))
    if uses_score and query.attend is None:
        raise QueryError("score() is only defined in a query with ATTEND BY")
    if query.attend is not None and isinstance(query.attend.source, A.Var):
        name = query.attend.source.name
        if match_kinds.get(name) != "node":
            raise QueryError(f"ATTEND BY {name}: not a node variable of the MATCH")
    if query.attend is not None and query.with_ is not None:
        raise QueryError("ATTEND BY and WITH cannot be combined yet")
    return match_kinds, names


def with_scope(query, kinds, then=True):
    """The names RETURN sees after WITH: bare variables keep their kind, other items (which
    must be aliased, as in Cypher) are values.  Checks the WITH items and its WHERE."""
    scope = {}
    for item in query.with_.items:
        check_expression(item.expr, kinds, "WITH", aggregates_ok=True)
        if isinstance(item.expr, A.Var):
            kind = kinds[item.expr.name]
            if kind == "path" and item.alias and item.alias != item.expr.name:
                raise QueryError("a path variable cannot be renamed in WITH")
            scope[item.alias or item.expr.name] = kind
        elif not item.alias:
            raise QueryError(f"the WITH expression {item.text!r} needs a name: add AS <name>")
        else:
            scope[item.alias] = "value"
    names = [i.alias or i.expr.name for i in query.with_.items]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise QueryError(f"WITH has duplicate name(s) {sorted(dup)}")
    if query.with_.where is not None:
        check_expression(query.with_.where, scope, "WITH ... WHERE")
    if then and query.with_.then:
        scope = then_scope(query.with_, scope)[0]
    return scope


def then_scope(with_, scope):
    """(names after the MATCH that follows WITH, that MATCH's slot names)."""
    inner, names = slot_names(_Patterns(with_.then), prefix="#w")
    clash = {s for s, k in inner.items() if s in scope and scope[s] != k}
    if clash:
        raise QueryError(f"the MATCH after WITH uses {sorted(clash)} as another kind than WITH "
                         "passes on")
    merged = {**inner, **scope}
    if with_.then_where is not None:
        check_expression(with_.then_where, merged, "WHERE")
    for pat in with_.then:
        for elem in pat.nodes + pat.rels:
            for _, v in elem.properties:
                check_expression(v, merged, "a property map")
    return merged, names


# -- planning ----------------------------------------------------------------------------------
def _prop_conjuncts(slot, element):
    return [A.Binary("=", A.Property(A.Var(slot), k), v) for k, v in element.properties]


def _start_cost(view, node, slot, bound, evaluate_constant):
    if slot in bound:
        return 0, None
    best = (view.num_nodes + 1, None)
    for key, value in node.properties:
        if A.variables(value):
            continue
        hits = len(view.lookup(key, evaluate_constant(value)))
        if hits < best[0]:
            best = (hits, (key, value))
    if node.labels and best[1] is None:
        best = (int(view.label_mask(node.labels).sum()), None)
    return best


def build_plan(query, kinds, names, view, evaluate_constant, pushdown=True):
    paths, bound = {}, set()
    steps, bound_after = _pattern_steps(query, range(len(query.patterns)), names, view,
                                        evaluate_constant, bound, paths, kinds)
    pre, residual = _place(A.conjuncts(query.where), steps, bound_after, pushdown, kinds)
    optional, p = [], len(query.patterns)
    for clause in query.optional:
        before = set(bound)
        o_steps, o_after = _pattern_steps(query, range(p, p + len(clause.patterns)), names,
                                          view, evaluate_constant, bound, paths, kinds)
        p += len(clause.patterns)
        o_pre, o_residual = _place(A.conjuncts(clause.where), o_steps, o_after, pushdown,
                                   kinds)
        o_steps[0].filters[:0] = o_pre   # conditions without variables filter its matches
        optional.append(OptionalPlan(o_steps, o_residual, sorted(bound - before),
                                     sorted(before & set(_uses(clause)))))
    after_with = None
    if query.with_ is not None and query.with_.then:
        scope = with_scope(query, kinds, then=False)
        merged, t_names = then_scope(query.with_, scope)
        t_bound = set(scope)
        t_steps, t_after = _pattern_steps(_Patterns(query.with_.then),
                                          range(len(query.with_.then)), t_names, view,
                                          evaluate_constant, t_bound, paths, merged)
        t_pre, t_residual = _place(A.conjuncts(query.with_.then_where), t_steps, t_after,
                                   pushdown, merged)
        t_steps[0].filters[:0] = t_pre
        after_with = OptionalPlan(t_steps, t_residual, sorted(t_bound - set(scope)), [])
    no_blocking = not query.order_by and not query.distinct and query.attend is None and \
        query.with_ is None and not query.optional and \
        not any(A.contains_aggregate(i.expr) for i in query.returns)
    return Plan(steps, pre, residual, kinds, paths,
                limit_pushdown=pushdown and no_blocking and query.limit is not None,
                optional=optional, after_with=after_with)


def _uses(clause):
    """Variables an OPTIONAL MATCH clause names (pattern elements and its WHERE)."""
    names = {e.var for pat in clause.patterns for e in pat.nodes + pat.rels if e.var}
    return names | (A.variables(clause.where) if clause.where is not None else set())


def _place(conjuncts, steps, bound_after, pushdown, kinds):
    """(pre-filters, residual) of WHERE conjuncts; the others go to the first step that
    binds all the variables (of this scope, ``kinds``) they read."""
    pre, residual = [], []
    for c in conjuncts:
        names_used = A.variables(c) & set(kinds)
        if any(isinstance(n, A.Call) and n.name == "score" and not n.args for n in A.walk(c)):
            residual.append(c)         # score() of the whole match is known only at the end
        elif not names_used:
            pre.append(c)
        elif not pushdown:
            residual.append(c)
        else:
            at = next(i for i, b in enumerate(bound_after) if names_used <= b)
            steps[at].filters.append(c)
    return pre, residual


def _pattern_steps(query, pattern_ids, names, view, evaluate_constant, bound, paths, kinds):
    """Scan and Expand steps of the patterns ``pattern_ids`` (of ``query.all_patterns``),
    each starting at its cheapest node; ``bound`` and ``paths`` are updated.  Returns the
    steps and the variables bound after each."""
    steps, bound_after = [], []
    for p in pattern_ids:
        pat = query.all_patterns[p]
        node_slots, rel_slots = names[p]
        if query.attend is not None:
            start = 0
            index = _start_cost(view, pat.nodes[0], node_slots[0], bound,
                                evaluate_constant)[1]
        else:
            costs = [_start_cost(view, node, node_slots[i], bound, evaluate_constant)
                     for i, node in enumerate(pat.nodes)]
            start = min(range(len(costs)), key=lambda i: costs[i][0])
            index = costs[start][1]
        node, slot = pat.nodes[start], node_slots[start]
        scan = Scan(slot, node, bound=slot in bound, index=index)
        scan.filters = [c for c in _prop_conjuncts(slot, node)
                        if index is None or c.left.key != index[0]]
        steps.append(scan)
        bound.add(slot)
        bound_after.append(set(bound))
        order = [(i, i + 1, False) for i in range(start, len(pat.rels))] + \
                [(i + 1, i, True) for i in range(start - 1, -1, -1)]
        for frm, to, reverse in order:
            rel = pat.rels[min(frm, to)]
            direction = rel.direction
            if reverse and direction != "both":
                direction = "in" if direction == "out" else "out"
            step = Expand(node_slots[frm], rel_slots[min(frm, to)], node_slots[to], rel,
                          pat.nodes[to], direction, reverse, node_slots[to] in bound,
                          attend=query.attend is not None)
            step.filters = _prop_conjuncts(node_slots[to], pat.nodes[to])
            if not rel.var_length:
                step.filters = _prop_conjuncts(rel_slots[min(frm, to)], rel) + step.filters
            steps.append(step)
            bound |= {node_slots[to], rel_slots[min(frm, to)]}
            bound_after.append(set(bound))
        if pat.path_var:
            recipe = [("node", node_slots[0])]
            for i, rel in enumerate(pat.rels):
                recipe += [(kinds[rel_slots[i]], rel_slots[i]), ("node", node_slots[i + 1])]
            paths[pat.path_var] = recipe
            bound.add(pat.path_var)
            bound_after[-1] = set(bound)
    return steps, bound_after


class _Patterns:
    """The pattern list of a subquery, shaped like a Query for slot_names/_pattern_steps."""
    attend = None

    def __init__(self, patterns):
        self.all_patterns = tuple(patterns)


def subquery_kinds(sub, kinds):
    """(kinds of the outer scope plus the subquery's own slots, their slot names)."""
    inner, names = slot_names(_Patterns(sub.patterns), prefix=f"#q{abs(hash(sub)) % 10**8}")
    clash = {s for s, k in inner.items() if s in kinds and kinds[s] != k}
    if clash:
        raise QueryError(f"variables {sorted(clash)} have another kind outside the subquery")
    return {**kinds, **inner}, names


def subquery_plan(sub, kinds, bound, view, evaluate_constant):
    """(steps, residual, kinds) of a COUNT / EXISTS subquery over rows that bind ``bound``."""
    merged, names = subquery_kinds(sub, kinds)
    bound, paths = set(bound), {}
    steps, after = _pattern_steps(_Patterns(sub.patterns), range(len(sub.patterns)), names,
                                  view, evaluate_constant, bound, paths, merged)
    pre, residual = _place(A.conjuncts(sub.where), steps, after, True, merged)
    steps[0].filters[:0] = pre
    return steps, residual, merged, paths
