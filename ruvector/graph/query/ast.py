"""Immutable syntax tree of a query (frozen dataclasses, tuples only: hashable and comparable,
with no reference to a graph).  ``text`` fields keep the source text for column names and
are left out of equality."""
from dataclasses import dataclass, field
from typing import Any, Optional


class Expr:
    """Base of expression nodes."""


@dataclass(frozen=True)
class Literal(Expr):
    value: Any            # int, float, str, bool, None or a tuple (list literal of literals)


@dataclass(frozen=True)
class Param(Expr):
    name: str


@dataclass(frozen=True)
class Var(Expr):
    name: str
    line: Optional[int] = field(default=None, compare=False)    # where the query names it
    column: Optional[int] = field(default=None, compare=False)


@dataclass(frozen=True)
class Property(Expr):
    subject: Expr
    key: str


@dataclass(frozen=True)
class Subscript(Expr):
    subject: Expr
    index: Expr


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple


@dataclass(frozen=True)
class Unary(Expr):
    op: str               # "-", "NOT"
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    """op: = <> < <= > >= =~ + - * / % AND OR XOR IN STARTS_WITH ENDS_WITH CONTAINS."""
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class IsNull(Expr):
    operand: Expr
    negated: bool = False


@dataclass(frozen=True)
class Call(Expr):
    name: str             # lower case
    args: tuple
    distinct: bool = False


@dataclass(frozen=True)
class CountStar(Expr):
    pass


@dataclass(frozen=True)
class Subquery(Expr):
    """``COUNT { pattern [WHERE cond] }`` (the number of matches per row) or ``EXISTS {...}``
    (whether there is one); the patterns may name variables bound outside."""
    kind: str                          # "count" or "exists"
    patterns: tuple
    where: Optional[Expr] = None

    @property
    def pattern_variables(self):
        return {e.var for pat in self.patterns for e in pat.nodes + pat.rels if e.var} | \
            {pat.path_var for pat in self.patterns if pat.path_var}


@dataclass(frozen=True)
class NodePattern:
    var: Optional[str]
    labels: tuple = ()                 # any of these labels (Label1|Label2)
    properties: tuple = ()             # ((key, Expr), ...)


@dataclass(frozen=True)
class RelPattern:
    var: Optional[str]
    types: tuple = ()
    direction: str = "out"             # "out" (->), "in" (<-), "both" (-)
    min_hops: int = 1
    max_hops: Optional[int] = 1        # None: unbounded (capped by max_hops at run time)
    var_length: bool = False
    properties: tuple = ()
    shortest: Optional[str] = None     # "one" (shortestPath) or "all" (allShortestPaths)


@dataclass(frozen=True)
class PathPattern:
    nodes: tuple                       # NodePattern, len(rels) + 1 of them
    rels: tuple = ()
    path_var: Optional[str] = None


@dataclass(frozen=True)
class Attend:
    source: Expr                       # Param or Var
    top: Any = 10                      # int or Param
    temperature: float = 1.0


@dataclass(frozen=True)
class ReturnItem:
    expr: Expr
    alias: Optional[str] = None
    text: str = field(default="", compare=False)

    @property
    def name(self):
        return self.alias or self.text


@dataclass(frozen=True)
class OrderItem:
    expr: Expr
    descending: bool = False


@dataclass(frozen=True)
class Optional_:
    """``OPTIONAL MATCH patterns [WHERE cond]``: each row so far extended by the patterns'
    matches, or kept once with nulls for the new variables when there is none."""
    patterns: tuple
    where: Optional[Expr] = None


@dataclass(frozen=True)
class With:
    """``WITH [DISTINCT] items [WHERE cond]`` between MATCH and RETURN: the rows projected
    (grouped when an item aggregates), then filtered; RETURN sees only these names."""
    items: tuple                       # ReturnItem
    distinct: bool = False
    where: Optional[Expr] = None
    then: tuple = ()                   # patterns of a MATCH after WITH (may be empty)
    then_where: Optional[Expr] = None


@dataclass(frozen=True)
class Query:
    patterns: tuple
    where: Optional[Expr]
    returns: tuple
    distinct: bool = False
    attend: Optional[Attend] = None
    order_by: tuple = ()
    skip: Any = None                   # int, Param or None
    limit: Any = None
    mode: str = "run"                  # "run", "explain" (plan only) or "profile"
    with_: Optional[With] = None
    optional: tuple = ()               # Optional_ clauses, in order

    @property
    def all_patterns(self):
        """The MATCH patterns, then those of every OPTIONAL MATCH."""
        return self.patterns + tuple(p for o in self.optional for p in o.patterns)


@dataclass(frozen=True)
class Union:
    """``q1 UNION [ALL] q2 ...``: the parts' rows together (deduplicated unless ALL)."""
    queries: tuple
    all: bool = False


AGGREGATES = frozenset({"count", "sum", "avg", "min", "max", "collect"})


def children(expr):
    """Direct sub-expressions of an expression node."""
    if isinstance(expr, Property):
        return (expr.subject,)
    if isinstance(expr, Subscript):
        return (expr.subject, expr.index)
    if isinstance(expr, ListExpr):
        return expr.items
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, IsNull):
        return (expr.operand,)
    if isinstance(expr, Call):
        return expr.args
    return ()


def walk(expr):
    """Pre-order iterator over an expression tree."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def variables(expr):
    """Names of the variables an expression reads (a subquery's pattern variables too; those
    bound only inside it are not known outside, so callers intersect with their scope)."""
    out = set()
    for n in walk(expr):
        if isinstance(n, Var):
            out.add(n.name)
        elif isinstance(n, Subquery):
            out |= n.pattern_variables
    return out


def is_aggregate(expr):
    return isinstance(expr, CountStar) or (isinstance(expr, Call) and expr.name in AGGREGATES)


def contains_aggregate(expr):
    return any(is_aggregate(n) for n in walk(expr))


def conjuncts(expr):
    """Split an AND tree into its conjuncts."""
    if expr is None:
        return []
    if isinstance(expr, Binary) and expr.op == "AND":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]
