"""QueryResult: columns, rows, dict iteration, Arrow export and run statistics."""
import json


class QueryResult:
    """``columns``, ``rows`` (tuples), ``stats`` and, for EXPLAIN / PROFILE queries, the
    ``plan`` as text (PROFILE: with rows, expansions and ms per step)."""

    def __init__(self, columns, rows, stats, plan=None):
        self.columns = list(columns)
        self.rows = list(rows)
        self.stats = dict(stats)
        self.plan = plan

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return (dict(zip(self.columns, row)) for row in self.rows)

    def __getitem__(self, i):
        return dict(zip(self.columns, self.rows[i]))

    def column(self, name):
        j = self.columns.index(name)
        return [row[j] for row in self.rows]

    def to_arrow(self):
        """A pyarrow Table; a column whose values Arrow cannot type together (mixed kinds)
        is stored as JSON text rather than dropped."""
        import pyarrow as pa
        arrays = {}
        for j, name in enumerate(self.columns):
            values = [row[j] for row in self.rows]
            try:
                arrays[name] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                arrays[name] = pa.array([None if v is None else json.dumps(v, default=str)
                                         for v in values], pa.string())
        return pa.table(arrays) if arrays else pa.table({})

    def __repr__(self):
        head = " | ".join(self.columns)
        body = "\n".join(" | ".join(repr(v) for v in row) for row in self.rows[:10])
        more = f"\n... ({len(self.rows)} rows)" if len(self.rows) > 10 else ""
        return f"QueryResult({len(self.rows)} rows)\n{head}\n{body}{more}"
