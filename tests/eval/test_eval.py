"""Ranking metrics against hand-computed values; the harness, qrels files, datasets, CLI."""
import json
import math

import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidInput
from ruvector.cli import main
from ruvector.eval import (digits, evaluate, load_qrels, ndcg_at_k, recall_at_k,
                           reciprocal_rank)


def test_metrics_by_hand():
    ranked = np.array([[5, 3, 9, -1], [1, 2, 3, 4], [7, 8, 9, 10]])
    qrels = [{3: 2.0, 4: 1.0}, {9: 1.0, 2: 0.0}, {}]
    np.testing.assert_allclose(recall_at_k(ranked, qrels, 2)[:2], [0.5, 0.0])
    np.testing.assert_allclose(recall_at_k(ranked[1:2], [{i: 1.0 for i in range(1, 9)}], 3), 1.0)
    dcg = 2.0 / math.log2(3)                         # gain 2 at rank 2
    ideal = 2.0 / math.log2(2) + 1.0 / math.log2(3)  # gains 2, 1 at ranks 1, 2
    nd = ndcg_at_k(ranked, qrels, 3)
    assert nd[0] == pytest.approx(dcg / ideal) and nd[1] == 0.0 and np.isnan(nd[2])
    rr = reciprocal_rank(ranked, qrels)
    assert rr[0] == 0.5 and rr[1] == 0.0 and np.isnan(rr[2])


def clustered(rng, n_class=8, per=40, dim=16, n_query=60):
    centres = 3 * rng.standard_normal((n_class, dim))
    labels = np.repeat(np.arange(n_class), per)
    corpus = centres[labels] + rng.standard_normal((len(labels), dim))
    q_labels = rng.integers(0, n_class, n_query)
    queries = centres[q_labels] + rng.standard_normal((n_query, dim))
    qrels = [{int(i): 1.0 for i in np.flatnonzero(labels == c)} for c in q_labels]
    return corpus, queries, qrels


def test_harness_against_brute_force(rng):
    corpus, queries, qrels = clustered(rng)
    report = evaluate(corpus, queries, qrels, metric="l2", k=10, candidates=50, seed=3)
    assert [r["method"] for r in report.rows] == ["ceiling", "hnsw", "exact", "attention",
                                                 "mmr", "learned"]
    test = np.sort(np.random.default_rng(3).permutation(60)[:30])
    d = ((queries[test][:, None] - corpus[None]) ** 2).sum(-1)
    truth = np.argsort(d, axis=1)[:, :10]
    expected = np.nanmean(recall_at_k(truth, [qrels[i] for i in test], 10))
    assert report.row("exact")["recall@10"] == pytest.approx(expected)
    for r in report.rows[1:]:
        assert 0 <= r["recall@10"] <= report.row("ceiling")["recall@10"] + 1e-12
        assert 0 <= r["ndcg@10"] <= 1 and 0 <= r["mrr"] <= 1 and r["ms_per_query"] > 0
    assert report.info["queries_test"] == 30 and "recall@10" in report.table()
    chosen = report.info["learned"]
    assert set(chosen["validation_ndcg@10"]) == {"start", "temperature 0.05",
                                                 "temperature 0.1", "temperature 0.2"}
    best = max(chosen["validation_ndcg@10"].values())
    key = "start" if chosen["chosen_temperature"] is None else \
        f"temperature {chosen['chosen_temperature']}"
    assert chosen["validation_ndcg@10"][key] == best
    assert report.row("exact")["ceiling_share"] == pytest.approx(
        report.row("exact")["recall@10"] / report.row("ceiling")["recall@10"])
    assert json.loads(report.to_json())["results"][0]["method"] == "ceiling"


def test_harness_errors(rng):
    corpus, queries, qrels = clustered(rng, n_query=6)
    with pytest.raises(DimensionMismatch, match="qrels"):
        evaluate(corpus, queries, qrels[:-1])
    with pytest.raises(InvalidInput, match="method"):
        evaluate(corpus, queries, qrels, methods=["bm25"])
    with pytest.raises(InvalidInput, match="training queries"):
        evaluate(corpus, queries[:2], qrels[:2], test_share=0.9)


def test_qrels_files(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps({"0": {"5": 1, "7": 2}, "2": {"1": 1}}))
    assert load_qrels(tmp_path / "q.json", 3) == [{5: 1.0, 7: 2.0}, {}, {1: 1.0}]
    (tmp_path / "q.txt").write_text("# trec\n0 0 5 1\n0 Q0 7 2\n2 1 1\n")
    assert load_qrels(tmp_path / "q.txt", 3) == [{5: 1.0, 7: 2.0}, {}, {1: 1.0}]
    (tmp_path / "bad.txt").write_text("9 1 1\n")
    with pytest.raises(InvalidInput, match="query 9"):
        load_qrels(tmp_path / "bad.txt", 3)


def test_digits_and_cli(tmp_path, capsys):
    corpus, queries, qrels = digits(limit=300)
    assert corpus.shape == (240, 64) and queries.shape == (60, 64) and len(qrels) == 60
    assert all(len(q) > 5 and set(q.values()) == {1.0} for q in qrels)
    np.save(tmp_path / "c.npy", corpus)
    np.save(tmp_path / "q.npy", queries)
    (tmp_path / "qrels.json").write_text(json.dumps(
        {str(i): {str(d): g for d, g in q.items()} for i, q in enumerate(qrels)}))
    assert main(["eval", str(tmp_path / "c.npy"), str(tmp_path / "q.npy"),
                 str(tmp_path / "qrels.json"), "--methods", "hnsw,exact", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in out["results"]] == ["ceiling", "hnsw", "exact"]
    assert out["results"][2]["ndcg@10"] > 0.8    # same-class neighbours are easy here
    assert main(["eval", "--dataset", "digits", str(tmp_path / "c.npy")]) == 2
