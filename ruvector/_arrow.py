"""Arrow on disk and in memory: reading tables (Parquet, Arrow IPC .arrow / .feather / .ipc,
CSV) and vectors (.npy too), the stores' IPC files, and list<float32> columns <-> (N, D)
float32 arrays."""
import os

import numpy as np
import pyarrow as pa

from .errors import InvalidInput, StorageError

TABLE_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".ipc", ".csv")


def read_table(path):
    """A pyarrow Table from a Parquet, Arrow IPC or CSV file."""
    suffix = os.path.splitext(str(path))[1].lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            return pq.read_table(path)
        if suffix in (".arrow", ".feather", ".ipc"):
            import pyarrow.feather as feather
            return feather.read_table(path)
        if suffix == ".csv":
            import pyarrow.csv as pcsv
            return pcsv.read_csv(path)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    raise InvalidInput(f"{path}: unsupported file type {suffix!r} "
                       f"(use .npy or one of {TABLE_SUFFIXES})")


def load_matrix(path):
    """The 2-D array of a .npy file (no pickles); StorageError / InvalidInput otherwise."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    if arr.ndim != 2:
        raise InvalidInput(f"{path} must hold a 2-D (N, D) array, got shape {arr.shape}")
    return arr


def read_vectors(path, vector_column="vector"):
    """(vectors (N, D) float32, table or None) from .npy or a table file."""
    if str(path).lower().endswith(".npy"):
        return np.ascontiguousarray(load_matrix(path), dtype=np.float32), None
    table = read_table(path)
    if vector_column not in table.column_names:
        raise InvalidInput(f"{path} has no column {vector_column!r} (columns: "
                           f"{table.column_names})")
    return vector_matrix(table.column(vector_column), f"{path}: column {vector_column!r}"), table


def vector_matrix(column, name, width=None):
    """(N, D) float32 from a list / large_list / fixed_size_list column of equal-length,
    non-null float vectors (one flat copy; D = ``width`` when given, also for N = 0);
    InvalidInput naming ``name`` otherwise."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
            or pa.types.is_fixed_size_list(col.type)):
        raise InvalidInput(f"{name} must hold lists of floats, got {col.type}")
    if col.null_count:
        raise InvalidInput(f"{name} holds null vectors")
    import pyarrow.compute as pc
    lengths = pc.unique(pc.list_value_length(col)).to_pylist()
    if len(lengths) > 1:
        raise InvalidInput(f"{name} holds vectors of different lengths {sorted(lengths)[:5]}")
    dim = lengths[0] if lengths else (width or 0)
    if width is not None and dim != width:
        raise InvalidInput(f"{name} holds vectors of width {dim}, expected {width}")
    try:
        flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise InvalidInput(f"{name} does not hold float vectors: {exc}") from None
    return np.ascontiguousarray(flat.reshape(len(col), dim))


def vectors_column(vectors):
    """list<float32> column from 1-D arrays or None (one flat copy when every row is set)."""
    n = len(vectors)
    present = [v is not None for v in vectors]
    if not any(present):
        return pa.nulls(n, pa.list_(pa.float32()))
    if all(present) and len({v.shape[0] for v in vectors}) == 1:
        width = vectors[0].shape[0]
        flat = np.concatenate(vectors).astype(np.float32, copy=False)
        offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(flat))
    return pa.array([None if v is None else v.tolist() for v in vectors], pa.list_(pa.float32()))


def vectors_from_column(column, width, name):
    """1-D float32 arrays (or None) per row, each ``width`` long when width is given."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(column)
    if column.null_count == n:
        return [None] * n
    if column.null_count == 0:
        return list(vector_matrix(column, f"{name} vectors", width))
    out = [None if v is None else np.asarray(v, dtype=np.float32) for v in column.to_pylist()]
    if width is not None and any(v is not None and v.shape != (width,) for v in out):
        raise InvalidInput(f"{name} vectors do not all have width {width}")
    return out


def write_ipc(table, path):
    """Write ``table`` as one Arrow IPC file."""
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_ipc(path):
    """The table of an Arrow IPC file."""
    with pa.OSFile(path, "rb") as source:
        return pa.ipc.open_file(source).read_all()
