"""Graph layer benchmark (prints JSON). Same as `ruvector bench graph --json`."""
from ruvector.benchmarks.graph import main

if __name__ == "__main__":
    main()
