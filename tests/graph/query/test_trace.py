"""GraphStore.trace: the matches of an ATTEND query as paths, in RETURN's order."""
import networkx as nx
import numpy as np
import pytest

from ruvector import QueryError
from ruvector.graph import GraphStore


@pytest.fixture
def store(rng):
    G = nx.gnp_random_graph(30, 0.2, seed=3, directed=True)
    for n in G:
        G.nodes[n].update(label="P", age=int(rng.integers(0, 50)),
                          embedding=rng.standard_normal(4))
    return GraphStore.from_networkx(G)


def test_paths_follow_the_graph_and_the_scores(store, rng):
    q = rng.standard_normal(4)
    text = ("MATCH (s {key: 1})-[*1..2]->(b), (c {key: 2}) ATTEND BY $q TOP 2 "
            "RETURN b.age AS age, score() ORDER BY age DESC LIMIT 5")
    matches = store.trace(text, {"q": q})
    rows = store.query(text, {"q": q}).rows
    assert len(matches) == len(rows) == 5
    for match, (age, score) in zip(matches, rows):
        first, second = match["paths"]
        assert match["score"] == score
        assert store.node(first["nodes"][-1])["properties"]["age"] == age
        assert second == {"nodes": [2], "relationships": []}
        for (a, b), e in zip(zip(first["nodes"], first["nodes"][1:]), first["relationships"]):
            edge = store.edge(e)
            assert (edge["source"], edge["target"]) == (a, b)


def test_aggregating_return_gives_every_match(store, rng):
    params = {"q": rng.standard_normal(4)}
    every = store.trace("MATCH (s {key: 1})-->(a)-->(b) ATTEND BY $q TOP 2 RETURN b", params)
    counted = store.trace("MATCH (s {key: 1})-->(a)-->(b) ATTEND BY $q TOP 2 "
                          "RETURN count(*) AS n ORDER BY n LIMIT 1", params)
    assert counted == every and len(every) == 4
    assert [m["score"] for m in every] == sorted((m["score"] for m in every), reverse=True)


def test_queries_that_are_not_one_attend_match(store):
    with pytest.raises(QueryError, match="ATTEND"):
        store.trace("MATCH (a)-->(b) RETURN b")
    with pytest.raises(QueryError, match="UNION"):
        store.trace("MATCH (a) ATTEND BY $q RETURN a UNION MATCH (a) ATTEND BY $q RETURN a",
                    {"q": [0.0] * 4})
