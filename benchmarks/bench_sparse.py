"""Sparse and geometric attention benchmark (prints JSON). Same as `ruvector bench sparse --json`."""
from ruvector.benchmarks.sparse import main

if __name__ == "__main__":
    main()
