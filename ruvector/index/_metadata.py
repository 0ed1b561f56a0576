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
            table = pa.Table.from_pylist(list(metadata))
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


def equality_mask(table, conditions, n_slots):
    """Boolean array over slots: every ``column == value`` of ``conditions`` holds."""
    allowed = np.ones(n_slots, dtype=bool)
    for column, value in conditions.items():
        if table is None or column not in table.column_names:
            return np.zeros(n_slots, dtype=bool)
        try:
            hit = pc.equal(table.column(column), pa.scalar(value))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"filter {column!r} == {value!r}: {exc}") from None
        allowed &= np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False),
                              dtype=bool)
    return allowed
