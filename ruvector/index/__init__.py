"""Vector index: VectorStore (hnswlib), attention re-ranking, learned distances."""
from .distance import AttentionDistance
from .rerank import AttentionReranker
from .store import SearchResult, VectorStore

__all__ = ["VectorStore", "SearchResult", "AttentionReranker", "AttentionDistance"]
