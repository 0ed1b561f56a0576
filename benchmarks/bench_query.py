"""Graph query benchmark (prints JSON). Same as `ruvector bench query --json`."""
from ruvector.benchmarks.query import main

if __name__ == "__main__":
    main()
