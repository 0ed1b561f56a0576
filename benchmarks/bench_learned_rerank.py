"""Learned re-ranking benchmark (prints JSON)."""
from ruvector.benchmarks.learned_rerank import main

if __name__ == "__main__":
    main()
