"""Parser: AST equality (no parse-tree indexing), syntax errors with positions, fuzzing."""
import pytest
from hypothesis import given, settings, strategies as st

from ruvector.errors import QueryError, QuerySyntaxError
from ruvector.graph.query import ast as A
from ruvector.graph.query.parser import MAX_NESTING, MAX_QUERY_CHARS, parse


def test_full_query_ast():
    q = parse("MATCH p = (a:Person|Robot {name: $n})-[r:KNOWS*2..]->(b)<--(c)\n"
              "WHERE 1 < a.age <= 3 AND NOT b.s STARTS WITH 'x' // a comment\n"
              "ATTEND BY $q TOP 3 TEMPERATURE 0.5\n"
              "RETURN DISTINCT a.name AS n, count(DISTINCT b) ORDER BY n DESC SKIP 1 LIMIT $l")
    expected = A.Query(
        patterns=(A.PathPattern(
            nodes=(A.NodePattern("a", ("Person", "Robot"), (("name", A.Param("n")),)),
                   A.NodePattern("b"), A.NodePattern("c")),
            rels=(A.RelPattern("r", ("KNOWS",), "out", 2, None, True),
                  A.RelPattern(None, (), "in", 1, 1, False)),
            path_var="p"),),
        where=A.Binary("AND",
                       A.Binary("AND", A.Binary("<", A.Literal(1), A.Property(A.Var("a"), "age")),
                                A.Binary("<=", A.Property(A.Var("a"), "age"), A.Literal(3))),
                       A.Unary("NOT", A.Binary("STARTS_WITH", A.Property(A.Var("b"), "s"),
                                               A.Literal("x")))),
        returns=(A.ReturnItem(A.Property(A.Var("a"), "name"), "n"),
                 A.ReturnItem(A.Call("count", (A.Var("b"),), True))),
        distinct=True,
        attend=A.Attend(A.Param("q"), 3, 0.5),
        order_by=(A.OrderItem(A.Var("n"), True),),
        skip=1, limit=A.Param("l"))
    assert q == expected
    assert q.returns[1].name == "count(DISTINCT b)"


@pytest.mark.parametrize("text, rel", [
    ("(a)-->(b)", A.RelPattern(None, (), "out", 1, 1, False)),
    ("(a)<--(b)", A.RelPattern(None, (), "in", 1, 1, False)),
    ("(a)--(b)", A.RelPattern(None, (), "both", 1, 1, False)),
    ("(a)<-->(b)", A.RelPattern(None, (), "both", 1, 1, False)),
    ("(a)-[*]->(b)", A.RelPattern(None, (), "out", 1, None, True)),
    ("(a)-[*3]->(b)", A.RelPattern(None, (), "out", 3, 3, True)),
    ("(a)-[*..4]-(b)", A.RelPattern(None, (), "both", 1, 4, True)),
    ("(a)<-[x:T|:U*0..2 {w: 1}]-(b)",
     A.RelPattern("x", ("T", "U"), "in", 0, 2, True, (("w", A.Literal(1)),))),
])
def test_relationship_forms(text, rel):
    assert parse(f"MATCH {text} RETURN a").patterns[0].rels == (rel,)


def test_expressions_and_keywords_case_insensitive():
    q = parse("match (n) where n.x in [1, 2.5, 'a', null, true] or n.y is not null "
              "xor n.z ends with 's' return -n.x * 2 + 1 % 3, coalesce(n.a, toLower('X')), "
              "count(*), $m.k, [1,2][0]")
    w = q.where
    assert w.op == "OR" and w.left.op == "IN"
    assert w.left.right == A.ListExpr((A.Literal(1), A.Literal(2.5), A.Literal("a"),
                                       A.Literal(None), A.Literal(True)))
    assert w.right == A.Binary("XOR", A.IsNull(A.Property(A.Var("n"), "y"), True),
                               A.Binary("ENDS_WITH", A.Property(A.Var("n"), "z"), A.Literal("s")))
    exprs = [i.expr for i in q.returns]
    assert exprs[0] == A.Binary("+", A.Binary("*", A.Unary("-", A.Property(A.Var("n"), "x")),
                                              A.Literal(2)),
                                A.Binary("%", A.Literal(1), A.Literal(3)))
    assert exprs[1] == A.Call("coalesce", (A.Property(A.Var("n"), "a"),
                                           A.Call("tolower", (A.Literal("X"),))))
    assert exprs[2] == A.CountStar()
    assert exprs[3] == A.Property(A.Param("m"), "k")
    assert exprs[4] == A.Subscript(A.ListExpr((A.Literal(1), A.Literal(2))), A.Literal(0))


def test_string_escapes_and_names():
    q = parse('MATCH (`my node`) RETURN "a\\"b\\n", \'it\\\'s\', `my node`.`odd key`')
    assert [i.expr for i in q.returns] == [
        A.Literal('a"b\n'), A.Literal("it's"), A.Property(A.Var("my node"), "odd key")]


@pytest.mark.parametrize("text, line, column", [
    ("MATCH (a RETURN a", 1, 10),
    ("MATCH (a) RETURN", 1, 17),
    ("MATCH (a)\nRETURN a ORDER a", 2, 16),
    ("MATCH (a) RETURN a ~", 1, 20),
    ("MATCH (a)-[*1.5]->(b) RETURN a", 1, 14),
    ("RETURN 1", 1, 1),
])
def test_syntax_errors_have_position_and_caret(text, line, column):
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column) == (line, column)
    caret_line = str(err).splitlines()[-1]
    assert caret_line.index("^") - 2 == column - 1


def test_semantic_parse_errors():
    with pytest.raises(QueryError, match="empty"):
        parse("MATCH (a)-[*3..1]->(b) RETURN a")
    with pytest.raises(QueryError, match=r"count\(\*\)"):
        parse("MATCH (a) RETURN sum(*)")
    with pytest.raises(QueryError, match="repeats"):
        parse("MATCH (a {x: 1, x: 2}) RETURN a")
    with pytest.raises(QueryError, match="limit"):
        parse("MATCH (a) RETURN a" + " " * MAX_QUERY_CHARS)
    with pytest.raises(QueryError):
        parse(42)


VALID = [
    "MATCH (a:Person {name: $n})-[r:KNOWS*1..3]->(b) WHERE a.age > 30 RETURN b.name LIMIT 5",
    "MATCH p=(a)-->(b)<-[:T]-(c) WHERE NOT a.x IN [1, 2] RETURN DISTINCT length(p) ORDER BY 1",
    "MATCH (s {key: $s})-[*..3]-(t) ATTEND BY $q TOP 4 TEMPERATURE 0.5 RETURN t, score(t)",
    "MATCH (a), (b) WHERE a.v STARTS WITH 'x' OR b.v IS NULL RETURN count(*), collect(a.v)",
]
TOKENS = ["MATCH", "WHERE", "RETURN", "ATTEND", "BY", "TOP", "(", ")", "[", "]", "{", "}", "-",
          "->", "<-", "--", "*", "..", ":", "|", ",", ".", "$q", "a", "b", "1", "2.5", "'s'",
          "AND", "OR", "NOT", "IN", "IS", "NULL", "=", "<", ">=", "+", "/", "count", "p", "=",
          "ORDER", "LIMIT", "SKIP", "DISTINCT", "//", "\n", "`", "\"", "~", "%"]


def _only_query_errors(text):
    try:
        parse(text)
    except QueryError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_fuzz_token_soup(tokens):
    _only_query_errors(" ".join(tokens))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 200), st.integers(0, 5),
       st.text(max_size=4))
def test_fuzz_mutated_queries(text, pos, cut, insert):
    pos %= len(text) + 1
    _only_query_errors(text[:pos] + insert + text[pos + cut:])


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(QueryError, match="more than 100 deep"):
        parse("MATCH (a) RETURN " + "(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(QueryError, match="nests too deeply"):
        parse("MATCH (a) RETURN " + "-" * 20000 + "1")


def test_nesting_up_to_the_limit_and_brackets_in_strings_parse():
    assert parse("MATCH (a) RETURN " + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING)
    assert parse("MATCH (a) RETURN '" + "(" * 500 + "' // " + "[" * 500)
