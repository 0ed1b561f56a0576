"""Reading relevance judgements: JSON ``{query: {item id: gain}}`` or TREC qrels text."""
import json

from ..errors import InvalidInput, StorageError


def load_qrels(path, n_queries):
    """One ``{item id: gain}`` dict per query row 0..n_queries-1 from ``path``: JSON
    ``{"<query row>": {"<item id>": gain, ...}, ...}``, or text with one judgement per line,
    ``query item gain`` or TREC's ``query 0 item gain`` (whitespace separated, ``#`` starts
    a comment).  Queries without a judgement get an empty dict."""
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    out = [{} for _ in range(n_queries)]
    if text.lstrip().startswith("{"):
        try:
            table = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"{path}: not valid JSON ({exc})") from None
        triples = [(q, d, g) for q, judged in table.items() for d, g in judged.items()]
    else:
        triples = []
        for n, line in enumerate(text.splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) not in (3, 4):
                raise InvalidInput(f"{path} line {n}: expected 'query item gain' or "
                                   f"'query 0 item gain', got {line.strip()!r}")
            triples.append((fields[0], fields[-2], fields[-1]))
    for q, d, g in triples:
        try:
            row, item, gain = int(q), int(d), float(g)
        except (TypeError, ValueError):
            raise InvalidInput(f"{path}: query {q!r}, item {d!r} and gain {g!r} must be an "
                               "integer row, an integer id and a number") from None
        if not 0 <= row < n_queries:
            raise InvalidInput(f"{path}: query {row} is not a row of the {n_queries} queries")
        out[row][item] = gain
    return out
