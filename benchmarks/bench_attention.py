"""Dense attention benchmark (prints JSON). Same as `ruvector bench attention --json`."""
from ruvector.benchmarks.attention import main

if __name__ == "__main__":
    main()
