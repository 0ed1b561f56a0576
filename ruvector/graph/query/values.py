"""Cypher value semantics, element-wise (three-valued logic, null propagation) and lifted
to whole columns.

A column is a 1-D NumPy array: numeric/bool dtype when it holds no null, otherwise an
object array with ``None`` for null.  Fast paths use NumPy directly on numeric columns; the
general path maps the scalar rule over object arrays (``np.frompyfunc``).
"""
import math
import re
from functools import lru_cache

import numpy as np

from ...errors import QueryError


def is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and \
        not isinstance(v, (bool, np.bool_))


def is_bool(v):
    return isinstance(v, (bool, np.bool_))


def is_list(v):
    return isinstance(v, (list, tuple))


def _kind(v):
    if v is None:
        return "null"
    if is_bool(v):
        return "bool"
    if is_number(v):
        return "number"
    if isinstance(v, str):
        return "string"
    if is_list(v):
        return "list"
    return type(v).__name__


INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def check_int64(value, what):
    """QueryError when an integer inside ``value`` (lists and maps searched, without
    recursion) does not fit in 64 bits, as query integers are 64-bit in Cypher."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (int, np.integer)) and not is_bool(v):
            if not INT64_MIN <= v <= INT64_MAX:
                raise QueryError(f"{what}: integer {v} is outside the 64-bit range")
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())


def int_result(value, expr):
    """``value`` if it fits in 64 bits, else QueryError naming the expression ``expr``."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise QueryError(f"integer overflow: {expr} does not fit in 64 bits")
    return value


# -- scalar rules --------------------------------------------------------------------------------
def eq(a, b):
    """Cypher ``=``: null if either side is null, False across kinds, element-wise on lists."""
    if a is None or b is None:
        return None
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return False
    if ka == "list":
        if len(a) != len(b):
            return False
        unknown = False
        for x, y in zip(a, b):
            r = eq(x, y)
            if r is False:
                return False
            unknown |= r is None
        return None if unknown else True
    return bool(a == b)


def neq(a, b):
    r = eq(a, b)
    return None if r is None else not r


def compare(a, b):
    """-1 / 0 / 1 for comparable values (numbers, strings, booleans), None otherwise."""
    if a is None or b is None:
        return None
    ka = _kind(a)
    if ka != _kind(b) or ka not in ("number", "string", "bool"):
        return None
    if ka == "number" and (math.isnan(a) or math.isnan(b)):
        return None
    return int(a > b) - int(a < b)          # int(): numpy scalars compare to np.bool_


def _ordered(test):
    def rule(a, b):
        c = compare(a, b)
        return None if c is None else test(c)
    return rule


RULES = {
    "=": eq, "<>": neq,
    "<": _ordered(lambda c: c < 0), "<=": _ordered(lambda c: c <= 0),
    ">": _ordered(lambda c: c > 0), ">=": _ordered(lambda c: c >= 0),
}


def _check_bool(v, op):
    if v is not None and not is_bool(v):
        raise QueryError(f"{op} expects booleans, got {_kind(v)} {v!r}")
    return v


def and_(a, b):
    a, b = _check_bool(a, "AND"), _check_bool(b, "AND")
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def or_(a, b):
    a, b = _check_bool(a, "OR"), _check_bool(b, "OR")
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def xor_(a, b):
    a, b = _check_bool(a, "XOR"), _check_bool(b, "XOR")
    return None if a is None or b is None else a != b


def not_(a):
    a = _check_bool(a, "NOT")
    return None if a is None else not a


def in_(x, lst):
    if lst is None:
        return None
    if not is_list(lst):
        raise QueryError(f"IN expects a list on its right, got {_kind(lst)} {lst!r}")
    unknown = False
    for item in lst:
        r = eq(x, item)
        if r is True:
            return True
        unknown |= r is None
    return None if unknown or (x is None and len(lst)) else False


def _string_rule(test):
    def rule(a, b):
        if not (isinstance(a, str) and isinstance(b, str)):
            return None
        return test(a, b)
    return rule


@lru_cache(maxsize=256)
def _regex(pattern):
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise QueryError(f"=~ needs a valid regular expression, {pattern!r}: {exc}") from None


RULES.update({
    "=~": _string_rule(lambda a, b: _regex(b).fullmatch(a) is not None),
    "STARTS_WITH": _string_rule(str.startswith),
    "ENDS_WITH": _string_rule(str.endswith),
    "CONTAINS": _string_rule(lambda a, b: b in a),
    "AND": and_, "OR": or_, "XOR": xor_, "IN": in_,
})


def _int_div(a, b):
    if b == 0:
        raise QueryError("integer division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _int_mod(a, b):
    """Cypher's integer %: the remainder takes the sign of the dividend (truncation)."""
    if b == 0:
        raise QueryError("integer modulo by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _float_mod(a, b):
    """Cypher's float %: NaN for an infinite dividend or a zero divisor."""
    if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
        return math.nan
    return math.fmod(a, b)


def _float_div(a, b):
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * \
            math.copysign(1.0, b)
    return a / b


def _arith(op):
    def rule(a, b):
        if a is None or b is None:
            return None
        if is_number(a) and is_number(b):
            ints = isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer))
            if ints:
                a, b = int(a), int(b)
                exact = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                         "/": lambda: _int_div(a, b), "%": lambda: _int_mod(a, b)}[op]()
                return int_result(exact, f"{a} {op} {b}")
            a, b = float(a), float(b)
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            return _float_div(a, b) if op == "/" else _float_mod(a, b)
        if op == "+":
            if is_list(a) or is_list(b):
                return list(a if is_list(a) else [a]) + list(b if is_list(b) else [b])
            if isinstance(a, str) or isinstance(b, str):
                if {_kind(a), _kind(b)} <= {"string", "number", "bool"}:
                    return _to_string(a) + _to_string(b)
        raise QueryError(f"cannot apply {op} to {_kind(a)} {a!r} and {_kind(b)} {b!r}")
    return rule


for _op in "+-*/%":
    RULES[_op] = _arith(_op)


def _to_string(v):
    if is_bool(v):
        return "true" if v else "false"
    return str(v)


def negate(a):
    if a is None:
        return None
    if not is_number(a):
        raise QueryError(f"cannot negate {_kind(a)} {a!r}")
    if isinstance(a, (int, np.integer)):
        return int_result(-int(a), f"-({a})")
    return -a


def subscript(lst, i):
    if lst is None or i is None:
        return None
    if isinstance(lst, dict):
        return lst.get(i) if isinstance(i, str) else None
    if not (is_list(lst) or isinstance(lst, str)) or not isinstance(i, (int, np.integer)) \
            or is_bool(i):
        raise QueryError(f"cannot index {_kind(lst)} with {_kind(i)} {i!r}")
    return lst[i] if -len(lst) <= i < len(lst) else None


# -- columns ---------------------------------------------------------------------------------------
def constant(value, n):
    """A column of n copies of one value."""
    if is_number(value) or is_bool(value):
        return np.full(n, value)
    return column([value] * n)


def object_array(values):
    """1-D object array of the values (element-wise: a list stays one value); NumPy scalars
    and arrays become Python numbers and lists, as query values."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v.tolist() if isinstance(v, (np.generic, np.ndarray)) else v
    return out


def column(values):
    """Object column from a Python sequence, narrowed to a numeric dtype when it is one kind
    of number/bool with no null."""
    return narrow(object_array(values))


def narrow(arr):
    if arr.dtype != object or not len(arr):
        return arr
    first = arr[0]
    if is_bool(first):
        if all(is_bool(v) for v in arr):
            return arr.astype(bool)
    elif isinstance(first, (int, np.integer)):
        if all(isinstance(v, (int, np.integer)) and not is_bool(v) and -2**63 <= v < 2**63
               for v in arr):
            return arr.astype(np.int64)
    elif isinstance(first, (float, np.floating)):
        if all(isinstance(v, (float, np.floating)) for v in arr):
            return arr.astype(np.float64)
    return arr


@lru_cache(maxsize=None)
def _ufunc(rule, nin):
    return np.frompyfunc(rule, nin, 1)


def _numeric(a):
    return a.dtype.kind in "iuf"


_NUMPY_CMP = {"=": np.equal, "<>": np.not_equal, "<": np.less, "<=": np.less_equal,
              ">": np.greater, ">=": np.greater_equal}


def binary(op, a, b):
    """Apply a binary operator to two columns."""
    if _numeric(a) and _numeric(b):
        fast = _numeric_binary(op, a, b)
        if fast is not None:
            return fast
    if a.dtype == bool and b.dtype == bool and op in ("AND", "OR", "XOR", "=", "<>"):
        fn = {"AND": np.logical_and, "OR": np.logical_or, "XOR": np.logical_xor,
              "=": np.equal, "<>": np.not_equal}[op]
        return fn(a, b)
    return narrow(_ufunc(RULES[op], 2)(a.astype(object), b.astype(object)))


def _numeric_binary(op, a, b):
    floats = a.dtype.kind == "f" or b.dtype.kind == "f"
    if op in _NUMPY_CMP:
        if floats and (np.isnan(a).any() or np.isnan(b).any()):
            return None            # comparisons with NaN are null in Cypher
        return _NUMPY_CMP[op](a, b)
    if floats:
        if op in "+-*":
            with np.errstate(over="ignore", invalid="ignore"):  # inf / nan as in Cypher
                return {"+": np.add, "-": np.subtract, "*": np.multiply}[op](a, b)
        if op in "/%" and not (b == 0).any() and np.isfinite(a).all():
            return np.divide(a, b) if op == "/" else np.fmod(a, b)
        return None                # the scalar rules give zero divisors and infinities
    a, b = a.astype(np.int64, copy=False), b.astype(np.int64, copy=False)
    if op in "+-*":
        return _checked_int64(op, a, b)
    if op in "/%":
        if (b == 0).any():
            raise QueryError(f"integer {'division' if op == '/' else 'modulo'} by zero")
        if op == "%":
            return np.fmod(a, b)
        if ((a == INT64_MIN) & (b == -1)).any():
            int_result(-INT64_MIN, f"{INT64_MIN} / -1")
        q = np.floor_divide(a, b)  # floor, then toward zero as Cypher truncates
        return q + ((q * b != a) & ((a < 0) != (b < 0)))
    return None


def _checked_int64(op, a, b):
    """a op b in int64; QueryError naming the first pair whose exact result overflows."""
    with np.errstate(over="ignore"):
        r = {"+": np.add, "-": np.subtract, "*": np.multiply}[op](a, b)
    a, b = np.broadcast_arrays(a, b)
    if op == "+":
        bad = ((a ^ r) & (b ^ r)) < 0
    elif op == "-":
        bad = ((a ^ b) & (a ^ r)) < 0
    else:
        safe_a = np.where(a == 0, 1, a)
        with np.errstate(over="ignore"):
            bad = (a != 0) & ((r // safe_a != b) | ((a == -1) & (b == INT64_MIN)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        int_result({"+": int(a[i]) + int(b[i]), "-": int(a[i]) - int(b[i]),
                    "*": int(a[i]) * int(b[i])}[op], f"{a[i]} {op} {b[i]}")
    return r


def unary(op, a):
    if op == "-":
        if _numeric(a) and a.dtype.kind in "iu" and (a == INT64_MIN).any():
            int_result(-INT64_MIN, f"-({INT64_MIN})")
        return -a if _numeric(a) else narrow(_ufunc(negate, 1)(a))
    if a.dtype == bool:
        return ~a
    return narrow(_ufunc(not_, 1)(a.astype(object)))


def is_null(a, negated):
    mask = np.zeros(len(a), bool) if a.dtype != object else \
        np.fromiter((v is None for v in a), bool, len(a))
    return ~mask if negated else mask


def truth(a, what="WHERE"):
    """Boolean mask of the rows whose value is true; non-boolean values raise QueryError."""
    if a.dtype == bool:
        return a
    out = np.zeros(len(a), bool)
    for i, v in enumerate(a):
        if v is True or v is np.True_:
            out[i] = True
        elif v is not None and v is not False and v is not np.False_:
            raise QueryError(f"{what} needs a boolean, got {_kind(v)} {v!r}")
    return out


def map_column(fn, *cols):
    """Apply a scalar function row-wise."""
    if not cols:
        raise QueryError("internal: map_column without columns")
    return narrow(_ufunc(fn, len(cols))(*[c.astype(object) for c in cols]))


def hashable(v):
    """A hashable stand-in for grouping and DISTINCT (lists -> tuples, dicts -> items;
    booleans never collide with 0/1)."""
    if is_bool(v):
        return ("__bool__", bool(v))
    if is_list(v):
        return ("__list__",) + tuple(hashable(x) for x in v)
    if isinstance(v, dict):
        return ("__map__",) + tuple(sorted((k, hashable(x)) for k, x in v.items()))
    if is_number(v) and not isinstance(v, (int, np.integer)) and float(v).is_integer():
        return int(v)              # 1 and 1.0 group together, as they compare equal
    return v.item() if isinstance(v, np.generic) else v


_TYPE_ORDER = {"list": 1, "string": 3, "bool": 4, "number": 5, "null": 9}


def sort_key(v):
    """Total order for ORDER BY (ascending): lists < strings < booleans < numbers < null."""
    k = _kind(v)
    if k == "number":
        return (5, 1 if math.isnan(v) else 0, 0 if math.isnan(v) else v)
    if k == "list":
        return (1, tuple(sort_key(x) for x in v))
    if k in ("string", "bool"):
        return (_TYPE_ORDER[k], v)
    if k == "null":
        return (9,)
    return (0, str(v))
