"""Vector index benchmark (prints JSON). Same as `ruvector bench index --json`."""
from ruvector.benchmarks.index import main

if __name__ == "__main__":
    main()
