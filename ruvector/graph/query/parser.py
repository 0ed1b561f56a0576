"""Text -> :class:`~ruvector.graph.query.ast.Query` (lark LALR(1) parser + transformer).

Errors are :class:`QuerySyntaxError` with 1-based line/column and a caret under the
offending token; nothing else escapes (size and nesting limits included)."""
import re
from dataclasses import replace
from functools import lru_cache
from importlib import resources

from ...errors import QueryError, QuerySyntaxError
from . import ast as A

MAX_QUERY_CHARS = 100_000
MAX_NESTING = 100
MAX_EXPRESSION_DEPTH = 150   # operators nested or chained (a OR b OR ...) in one expression
INT64 = (-2**63, 2**63 - 1)
# strings, quoted names and comments (whose brackets do not nest) or one bracket
_BRACKETS = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`[^`]+`|//[^\n]*|[()\[\]{}]")


@lru_cache(maxsize=1)
def _lark():
    import lark
    grammar = resources.files(__package__).joinpath("cypher.lark").read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True,
                     maybe_placeholders=False)


def _unquote_name(tok):
    s = str(tok)
    return s[1:-1] if s.startswith("`") else s


def _unescape(s):
    body = s[1:-1]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "b": "\b",
               "f": "\f"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and _is_hex(body[i + 2:i + 6]):
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(escapes.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _is_hex(s):
    return len(s) == 4 and all(c in "0123456789abcdefABCDEF" for c in s)


def _where_of(items):
    """The condition of a clause's ("where", expr) child, or None."""
    return next((x[1] for x in items if isinstance(x, tuple) and x[0] == "where"), None)


def _is_token(x, *types):
    from lark import Token
    return isinstance(x, Token) and (not types or x.type in types)


def _build_transformer():
    from lark import Token, Transformer, v_args

    def values(items):
        """Children without keyword tokens."""
        return [x for x in items if not (isinstance(x, Token) and x.type != "NAME"
                                         and x.type not in ("INT", "RANGE", "LARROW", "RARROW"))]

    class ToAst(Transformer):
        def __init__(self, text):
            super().__init__()
            self.text = text

        # -- literals and atoms ----------------------------------------------------------------
        def int_literal(self, items):
            return A.Literal(_int_token(items[0]))

        def float_literal(self, items):
            return A.Literal(float(items[0]))

        def string(self, items):
            return A.Literal(_unescape(str(items[0])))

        def true(self, _):
            return A.Literal(True)

        def false(self, _):
            return A.Literal(False)

        def null(self, _):
            return A.Literal(None)

        def param(self, items):
            return A.Param(_unquote_name(items[0]))

        def prop_name(self, items):
            return _unquote_name(items[0])

        def variable(self, items):
            token = items[0]
            return A.Var(_unquote_name(token), getattr(token, "line", None),
                         getattr(token, "column", None))

        def subquery(self, items):
            where = _where_of(items)
            return (tuple(x for x in items if isinstance(x, A.PathPattern)), where)

        def count_subquery(self, items):
            return A.Subquery("count", *items[1])

        def exists_subquery(self, items):
            return A.Subquery("exists", *items[1])

        def count_star(self, items):
            if str(items[0]).lower() != "count":
                raise QueryError(f"only count(*) takes '*', not {items[0]}(*)")
            return A.CountStar()

        def call(self, items):
            distinct = any(_is_token(x, "DISTINCT") for x in items)
            args = tuple(x for x in items[1:] if not _is_token(x))
            return A.Call(str(items[0]).lower(), args, distinct)

        def list_literal(self, items):
            return A.ListExpr(tuple(items))

        def property(self, items):
            return A.Property(items[0], items[1])

        def subscript(self, items):
            return A.Subscript(items[0], items[1])

        # -- operators -------------------------------------------------------------------------
        def _fold(self, items):
            left = items[0]
            for i in range(1, len(items), 2):
                op = str(items[i]).upper()
                op = "<>" if op == "!=" else op
                left = A.Binary(op, left, items[i + 1])
            return left

        or_expr = xor_expr = and_expr = additive = multiplicative = _fold

        def comparison(self, items):
            if len(items) <= 3:
                return self._fold(items)
            # a < b < c  ==  a < b AND b < c
            parts = [A.Binary("<>" if str(items[i]) == "!=" else str(items[i]), items[i - 1],
                              items[i + 1]) for i in range(1, len(items), 2)]
            out = parts[0]
            for p in parts[1:]:
                out = A.Binary("AND", out, p)
            return out

        def not_op(self, items):
            return A.Unary("NOT", items[-1])

        def neg(self, items):
            return A.Unary("-", items[-1])

        def unary(self, items):           # unary plus
            return items[-1]

        def in_op(self, items):
            return A.Binary("IN", items[0], items[-1])

        def starts_with(self, items):
            return A.Binary("STARTS_WITH", items[0], items[-1])

        def ends_with(self, items):
            return A.Binary("ENDS_WITH", items[0], items[-1])

        def contains(self, items):
            return A.Binary("CONTAINS", items[0], items[-1])

        def is_null(self, items):
            return A.IsNull(items[0], False)

        def is_not_null(self, items):
            return A.IsNull(items[0], True)

        # -- patterns --------------------------------------------------------------------------
        def label_list(self, items):
            return ("labels", tuple(_unquote_name(x) for x in items))

        def type_list(self, items):
            return ("types", tuple(_unquote_name(x) for x in items))

        def prop_entry(self, items):
            return (items[0], items[1])

        def prop_map(self, items):
            keys = [k for k, _ in items]
            dup = {k for k in keys if keys.count(k) > 1}
            if dup:
                raise QueryError(f"property map repeats key(s) {sorted(dup)}")
            return ("props", tuple(items))

        def hops(self, items):
            ints = [_int_token(x) for x in items if _is_token(x, "INT")]
            has_range = any(_is_token(x, "RANGE") for x in items)
            if not has_range:
                lo = hi = ints[0] if ints else None
                if lo is None:
                    return ("hops", 1, None)
                return ("hops", lo, hi)
            first_is_int = bool(items) and _is_token(items[0], "INT")
            lo = ints[0] if first_is_int else 1
            rest = ints[1:] if first_is_int else ints
            hi = rest[0] if rest else None
            if hi is not None and hi < lo:
                raise QueryError(f"variable-length range *{lo}..{hi} is empty")
            return ("hops", lo, hi)

        def node_pattern(self, items):
            var, labels, props = None, (), ()
            for x in items:
                if _is_token(x, "NAME"):
                    var = _unquote_name(x)
                elif x[0] == "labels":
                    labels = x[1]
                elif x[0] == "props":
                    props = x[1]
            return A.NodePattern(var, labels, props)

        def rel_body(self, items):
            out = {"var": None, "types": (), "props": (), "hops": None}
            for x in items:
                if _is_token(x, "NAME"):
                    out["var"] = _unquote_name(x)
                else:
                    out[x[0]] = x[1:] if x[0] == "hops" else x[1]
            return out

        def _rel(self, items, direction):
            body = next((x for x in items if isinstance(x, dict)), None) or \
                {"var": None, "types": (), "props": (), "hops": None}
            hops = body["hops"]
            lo, hi = (1, 1) if hops is None else hops
            return A.RelPattern(body["var"], body["types"], direction, lo, hi, hops is not None,
                                body["props"])

        def rel_out(self, items):
            return self._rel(items, "out")

        def rel_in(self, items):
            return self._rel(items, "in")

        def rel_both(self, items):
            return self._rel(items, "both")

        def pattern(self, items):
            path_var = None
            if _is_token(items[0], "NAME"):
                path_var = _unquote_name(items[0])
                items = items[1:]
            if _is_token(items[0], "SHORTEST"):
                kind = "all" if str(items[0]).lower().startswith("all") else "one"
                rel = items[2]
                if not rel.var_length:
                    raise QueryError(f"{items[0]} needs a variable-length relationship, "
                                     "e.g. -[*..10]-")
                items = [items[1], replace(rel, shortest=kind), items[3]]
            return A.PathPattern(tuple(items[0::2]), tuple(items[1::2]), path_var)

        # -- clauses ---------------------------------------------------------------------------
        def match_clause(self, items):
            return ("match", tuple(x for x in items if not _is_token(x)))

        def where_clause(self, items):
            return ("where", items[-1])

        def count_value(self, items):
            return _int_token(items[0]) if _is_token(items[0], "INT") else items[0]

        def attend_source(self, items):
            x = items[0]
            return A.Var(_unquote_name(x)) if _is_token(x, "NAME") else x

        def attend_clause(self, items):
            vals = [x for x in items if not _is_token(x)]
            kw = [str(x).upper() for x in items if _is_token(x)]
            source, rest = vals[0], vals[1:]
            top = rest.pop(0) if "TOP" in kw else 10
            temperature = rest.pop(0).value if "TEMPERATURE" in kw else 1.0
            return ("attend", A.Attend(source, top, float(temperature)))

        @v_args(meta=True)
        def return_item(self, meta, items):
            alias = _unquote_name(items[-1]) if len(items) == 3 else None
            return A.ReturnItem(items[0], alias, self.text[meta.start_pos:meta.end_pos].strip())

        def optional_clause(self, items):
            where = _where_of(items)
            return A.Optional_(tuple(x for x in items if isinstance(x, A.PathPattern)), where)

        def then_match(self, items):
            where = _where_of(items)
            return ("then", items[0][1], where)

        def with_clause(self, items):
            distinct = any(_is_token(x, "DISTINCT") for x in items)
            where = _where_of(items)
            then = next((x for x in items if isinstance(x, tuple) and x[0] == "then"),
                        ("then", (), None))
            return ("with", A.With(tuple(x for x in items if isinstance(x, A.ReturnItem)),
                                   distinct, where, then[1], then[2]))

        def return_clause(self, items):
            distinct = any(_is_token(x, "DISTINCT") for x in items)
            return ("return", tuple(x for x in items if isinstance(x, A.ReturnItem)), distinct)

        def order_item(self, items):
            desc = len(items) > 1 and str(items[1]).upper().startswith("DESC")
            return A.OrderItem(items[0], desc)

        def order_clause(self, items):
            return ("order", tuple(x for x in items if isinstance(x, A.OrderItem)))

        def skip_clause(self, items):
            return ("skip", items[-1])

        def limit_clause(self, items):
            return ("limit", items[-1])

        def union_op(self, items):
            return ("union", any(_is_token(x, "ALL") for x in items))

        def start(self, items):
            mode = next((str(x).lower() for x in items if _is_token(x, "EXPLAIN")
                         or _is_token(x, "PROFILE")), "run")
            queries = [replace(q, mode=mode) for q in items if isinstance(q, A.Query)]
            ops = {flag for x in items if isinstance(x, tuple) for flag in x[1:]}
            if len(queries) == 1:
                return queries[0]
            if len(ops) > 1:
                raise QueryError("UNION and UNION ALL cannot be mixed in one query")
            return A.Union(tuple(queries), ops.pop())

        def single_query(self, items):
            parts = {x[0]: x for x in items if isinstance(x, tuple)}
            _, returns, distinct = parts["return"]
            return A.Query(
                patterns=parts["match"][1],
                where=parts["where"][1] if "where" in parts else None,
                returns=returns, distinct=distinct,
                attend=parts["attend"][1] if "attend" in parts else None,
                order_by=parts["order"][1] if "order" in parts else (),
                skip=parts["skip"][1] if "skip" in parts else None,
                limit=parts["limit"][1] if "limit" in parts else None,
                with_=parts["with"][1] if "with" in parts else None,
                optional=tuple(x for x in items if isinstance(x, A.Optional_)))

    return ToAst


@lru_cache(maxsize=1)
def _transformer_class():
    return _build_transformer()


def _syntax_error(text, exc):
    import lark
    line, col = getattr(exc, "line", None), getattr(exc, "column", None)
    if isinstance(exc, lark.exceptions.UnexpectedEOF) or line in (None, -1):
        lines = text.split("\n")
        line, col = len(lines), len(lines[-1]) + 1
        what = "unexpected end of query"
    elif isinstance(exc, lark.exceptions.UnexpectedToken):
        what = f"unexpected {str(exc.token)!r}"
        if exc.token.type == "$END":
            lines = text.split("\n")
            line, col = len(lines), len(lines[-1]) + 1
            what = "unexpected end of query"
    else:
        what = f"unexpected character {text[exc.pos_in_stream]!r}" \
            if getattr(exc, "pos_in_stream", None) is not None else "invalid input"
    expected = _expected(getattr(exc, "expected", None) or getattr(exc, "allowed", None))
    src = text.split("\n")[line - 1] if text else ""
    caret = " " * (max(col, 1) - 1) + "^"
    return QuerySyntaxError(f"{what} at line {line}, column {col}{expected}\n  {src}\n  "
                            f"{caret}", line, col)


_TERMINAL_WORDS = {"NAME": "a name", "INT": "an integer", "FLOAT": "a number",
                   "STRING": "a string", "COMP_OP": "a comparison", "ADD_OP": "+ or -",
                   "MUL_OP": "*, / or %"}


def _expected(names):
    """'; expected one of: ...' for the terminals the parser would have accepted."""
    if not names:
        return ""
    shown = set()
    for t in _lark().terminals:
        if t.name not in names or t.name in ("WS", "COMMENT"):
            continue
        if t.name in _TERMINAL_WORDS:
            shown.add(_TERMINAL_WORDS[t.name])
        elif t.pattern.type == "str":
            value = t.pattern.value
            shown.add(value.upper() if "i" in t.pattern.flags else repr(value))
    if not shown:
        return ""
    ordered = sorted(shown, key=lambda s: (s[0].isalpha() and s.islower(), s))
    return "; expected " + (ordered[0] if len(ordered) == 1 else
                            "one of " + ", ".join(ordered))


def _int_token(token):
    """An integer literal, which must fit in 64 bits as in Cypher."""
    value = int(token)
    if value > INT64[1]:
        raise QueryError(f"integer literal {token} is outside the 64-bit integer range")
    return value


def _check_depth(query):
    """QueryError when an expression nests deeper than MAX_EXPRESSION_DEPTH (the evaluator
    recurses on the tree).  Walks the whole query without recursion."""
    stack = [(query, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, A.Expr):
            depth += 1
            if depth > MAX_EXPRESSION_DEPTH:
                raise QueryError(f"an expression nests or chains more than "
                                 f"{MAX_EXPRESSION_DEPTH} operators")
        if isinstance(node, (tuple, list)):
            stack.extend((child, depth) for child in node)
        elif hasattr(node, "__dataclass_fields__"):
            stack.extend((getattr(node, f), depth) for f in node.__dataclass_fields__)


_SKIP = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`[^`]*`")
_SIZE = re.compile(r"\bsize\s*\(\s*\(", re.IGNORECASE)


def _size_of_patterns(text):
    """Older Cypher's ``size(<pattern>)`` rewritten as ``COUNT { <pattern> }`` (a pattern: a
    parenthesised node followed by a relationship), outside strings; other text unchanged."""
    masked = _SKIP.sub(lambda m: "_" * len(m.group()), text)
    out, pos = [], 0
    for match in _SIZE.finditer(masked):
        if match.start() < pos:
            continue
        start = masked.index("(", match.start())
        end = _closing(masked, start)
        first = _closing(masked, masked.index("(", start + 1))
        if end is None or first is None or not masked[first + 1:end].lstrip()[:1] in "-<":
            continue
        out += [text[pos:match.start()], "COUNT { ", text[start + 1:end], " }"]
        pos = end + 1
    return "".join(out) + text[pos:]


def _closing(text, open_at):
    """Index of the parenthesis closing the one at ``open_at`` (None when unbalanced)."""
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return None


def _check_nesting(text):
    """QueryError when brackets ( [ { nest deeper than MAX_NESTING outside strings."""
    if sum(text.count(c) for c in "([{") <= MAX_NESTING:
        return
    depth = 0
    for match in _BRACKETS.finditer(text):
        tok = match.group()
        if tok in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise QueryError(f"query nests brackets more than {MAX_NESTING} deep")
        elif tok in ")]}":
            depth = max(depth - 1, 0)


@lru_cache(maxsize=256)
def parse(text):
    """Parse a query; raises QuerySyntaxError / QueryError (never anything else)."""
    import lark
    if not isinstance(text, str):
        raise QueryError(f"query must be a string, got {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query has {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
    _check_nesting(text)
    try:
        try:
            tree = _lark().parse(text)
        except lark.exceptions.UnexpectedInput as exc:
            legacy = _size_of_patterns(text)   # size((a)--()) as COUNT { (a)--() }
            if legacy == text:
                raise
            try:
                tree, text = _lark().parse(legacy), legacy
            except lark.exceptions.UnexpectedInput:
                raise exc from None
        query = _transformer_class()(text).transform(tree)
        _check_depth(query)
        return query
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, RecursionError):
            raise QueryError("query nests too deeply") from None
        raise QueryError(f"cannot read query: {exc.orig_exc}") from None
    except RecursionError:
        raise QueryError("query nests too deeply") from None
