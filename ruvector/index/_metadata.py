"""Item metadata as an Arrow table aligned with the store's slots."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DimensionMismatch, InvalidInput


def to_table(metadata, n):
    """A pyarrow Table of ``n`` rows from a list of dicts, a dict of columns or a Table."""
    if metadata is None:
        return None
    try:
        if isinstance(metadata, pa.Table):
            table = metadata
        elif isinstance(metadata, dict):
            table = pa.table({k: (v if isinstance(v, pa.Array) else list(v))
                              for k, v in metadata.items()})
        elif isinstance(metadata, (list, tuple)):
            if not all(isinstance(row, dict) for row in metadata):
                raise InvalidInput("metadata rows must be dicts")
            # every row's keys (Table.from_pylist would keep only the first row's)
            columns = dict.fromkeys(key for row in metadata for key in row)
            table = pa.table({key: [row.get(key) for row in metadata] for key in columns}) \
                if columns else pa.Table.from_pylist(list(metadata))
        else:
            raise InvalidInput(f"metadata must be a list of dicts, a dict of columns or a "
                               f"pyarrow.Table, got {type(metadata).__name__}")
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise InvalidInput(f"metadata cannot be converted to Arrow: {exc}") from None
    if table.num_rows != n:
        raise DimensionMismatch(f"metadata has {table.num_rows} rows for {n} vectors")
    return table


def append(existing, new, n_existing, n_new):
    """Concatenate slot-aligned tables; missing columns on either side become nulls."""
    if new is None and existing is None:
        return None
    if existing is None:
        existing = pa.table({name: pa.nulls(n_existing, field.type)
                             for name, field in zip(new.schema.names, new.schema)})
    if new is None:
        new = pa.table({name: pa.nulls(n_new, field.type)
                        for name, field in zip(existing.schema.names, existing.schema)})
    try:
        return pa.concat_tables([existing, new], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"metadata columns do not fit the stored ones: {exc}") from None


COMPARISONS = {"$eq": pc.equal, "$ne": pc.not_equal, "$gt": pc.greater,
               "$gte": pc.greater_equal, "$lt": pc.less, "$lte": pc.less_equal}
MEMBERSHIP = ("$in", "$nin")
LOGICAL = ("$and", "$or")


def filter_mask(table, conditions, n_slots):
    """Boolean array over slots where the metadata filter ``conditions`` holds.

    ``{column: value}`` is equality; ``{column: {op: operand, ...}}`` with op one of
    $eq $ne $gt $gte $lt $lte $in $nin (several ops: all must hold); ``{"$and": [f, ...]}``
    / ``{"$or": [f, ...]}`` combine filters; the entries of one mapping are ANDed.  A null
    (an item without that column) never matches, $ne and $nin included (SQL semantics).
    An unknown column or operator, or an operand that does not compare with the column's
    type, raises InvalidInput.
    """
    if not isinstance(conditions, dict):
        raise InvalidInput(f"a metadata filter must be a mapping, got {type(conditions).__name__}")
    allowed = np.ones(n_slots, dtype=bool)
    for key, value in conditions.items():
        if key in LOGICAL:
            if not isinstance(value, (list, tuple)) or not value:
                raise InvalidInput(f"{key} takes a non-empty list of filters, got {value!r}")
            masks = [filter_mask(table, part, n_slots) for part in value]
            allowed &= np.logical_and.reduce(masks) if key == "$and" \
                else np.logical_or.reduce(masks)
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidInput(f"unknown filter operator {key!r} at the top level "
                               f"(use {' / '.join(LOGICAL)} or a column name)")
        else:
            allowed &= _column_mask(table, key, value)
    return allowed


def column_names(table):
    """The metadata columns of ``table`` (None: a store without metadata)."""
    return [] if table is None else table.column_names


def describe_columns(table):
    """The store's metadata columns for an error message ("none" when there are none)."""
    return ", ".join(map(repr, column_names(table))) or "none"


def take_rows(table, slots):
    """Rows of ``table`` at ``slots`` (int64), a row of nulls where a slot is -1 (padding)."""
    return table.take(pa.array(np.maximum(slots, 0), mask=slots < 0))


def _column_mask(table, column, condition):
    if column not in column_names(table):
        raise InvalidInput(f"filter on unknown metadata column {column!r}; the store's columns: "
                           + describe_columns(table))
    data = table.column(column)
    ops = condition if isinstance(condition, dict) else {"$eq": condition}
    if not ops:
        raise InvalidInput(f"filter on {column!r}: an empty condition")
    mask = None
    for op, operand in ops.items():
        try:
            if op in COMPARISONS:
                hit = COMPARISONS[op](data, pa.scalar(operand))
            elif op in MEMBERSHIP:
                if isinstance(operand, (str, bytes)) or not hasattr(operand, "__iter__"):
                    raise InvalidInput(f"filter {column!r} {op} takes a list, got {operand!r}")
                hit = pc.is_in(data, value_set=pa.array(list(operand), type=data.type))
                if op == "$nin":
                    hit = pc.and_(pc.invert(hit), pc.is_valid(data))
            else:
                raise InvalidInput(f"unknown filter operator {op!r} on {column!r}; known: "
                                   + ", ".join([*COMPARISONS, *MEMBERSHIP]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"filter {column!r} {op} {operand!r} does not fit the column's "
                               f"type {data.type}: {exc}") from None
        hit = np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
        mask = hit if mask is None else mask & hit
    return mask
