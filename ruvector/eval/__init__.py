"""Retrieval evaluation: recall@k, nDCG@10 and MRR of plain HNSW search and each
re-ranker (exact, attention, MMR, a learned distance trained on held-out-free queries),
on your own judged queries or on bundled datasets.  See README "Evaluation"."""
from .datasets import digits
from .harness import METHODS, EvalReport, evaluate
from .metrics import ndcg_at_k, recall_at_k, reciprocal_rank
from .qrels import load_qrels

__all__ = ["evaluate", "EvalReport", "METHODS", "recall_at_k", "ndcg_at_k", "reciprocal_rank",
           "load_qrels", "digits"]
