"""Cypher-like queries with attention-guided traversal on NetworkX's Florentine families graph.

Node embeddings are deterministic (normalised-Laplacian eigenvectors); the script runs a plain
pattern, an aggregate, an ATTEND BY walk toward a target family, and prints a plan.

    python examples/graph_query.py
"""
import networkx as nx
import numpy as np

from ruvector.graph import GraphStore


def build_store(dim=6):
    G = nx.florentine_families_graph()
    nodes = sorted(G.nodes())
    _, vecs = np.linalg.eigh(nx.normalized_laplacian_matrix(G, nodelist=nodes).toarray())
    emb = vecs[:, 1:dim + 1]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    store = GraphStore(dim, directed=False)
    store.add_nodes(nodes, labels=[("Family",)] * len(nodes), embeddings=emb,
                    properties=[{"degree": G.degree(n)} for n in nodes])
    store.add_edges((u, v, {"type": "MARRIED"}) for u, v in G.edges())
    return store


def run(out=print):
    g = build_store()
    results = {}
    res = g.query("MATCH (a:Family)-[:MARRIED]-(b) WHERE a.degree >= 4 "
                  "RETURN a.key AS family, count(b) AS ties ORDER BY ties DESC, family LIMIT 3")
    results["hubs"] = res.rows
    out(f"best connected: {res.rows}")
    res = g.query("MATCH (s {key: $start})-[:MARRIED*2]-(t) WHERE t <> s "
                  "RETURN DISTINCT t.key AS reached ORDER BY reached", {"start": "Medici"})
    results["two_hops"] = [r[0] for r in res.rows]
    out(f"two marriages from the Medici: {results['two_hops']}")
    res = g.query("MATCH (s {key: $start}), (goal {key: $goal}), (s)-[:MARRIED*1..3]-(t) "
                  "ATTEND BY goal TOP 2 TEMPERATURE 0.3 RETURN t.key AS step, score() AS score "
                  "LIMIT 5", {"start": "Medici", "goal": "Strozzi"})
    results["toward_strozzi"] = res.rows
    out("ATTEND toward the Strozzi: " + ", ".join(f"{k} ({s:.3f})" for k, s in res.rows))
    results["plan"] = g.explain("MATCH (a:Family {key: $k})-[:MARRIED]-(b) RETURN b",
                                {"k": "Medici"})
    return results


if __name__ == "__main__":
    run()
