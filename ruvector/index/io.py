"""Reading tables and vectors for the CLI: Parquet, Arrow IPC (.arrow / .feather / .ipc),
CSV or .npy."""
import os

import numpy as np
import pyarrow as pa

from ..errors import InvalidInput, StorageError

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


def read_vectors(path, vector_column="vector"):
    """(vectors (N, D) float32, table or None) from .npy or a table file."""
    if str(path).lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {path}: {exc}") from None
        if arr.ndim != 2:
            raise InvalidInput(f"{path} must hold a 2-D array, got shape {arr.shape}")
        return np.ascontiguousarray(arr, dtype=np.float32), None
    table = read_table(path)
    if vector_column not in table.column_names:
        raise InvalidInput(f"{path} has no column {vector_column!r} (columns: "
                           f"{table.column_names})")
    col = table.column(vector_column).combine_chunks()
    try:
        vectors = np.stack(col.to_numpy(zero_copy_only=False)).astype(np.float32)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{path}: column {vector_column!r} is not a list of equal-length "
                           f"float vectors: {exc}") from None
    return vectors, table
