"""Checks of an hnswlib index file against what the store's manifest says it holds.

hnswlib (0.8) writes a 96-byte header::

    offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset,
    offsetData (6 x size_t), maxlevel (int32), enterpoint_node (uint32), maxM, maxM0, M
    (3 x size_t), mult (double), ef_construction (size_t)

then ``cur_element_count * size_data_per_element`` bytes of level-0 data (links:
``maxM0 * 4 + 4`` bytes, the vector: ``dim * 4``, the label: 8) and, per element, a uint32
byte count followed by that element's upper-level links.  hnswlib neither checks these
against the ``dim`` it is given nor reports a short write, so both are checked here.
"""
import mmap
import struct

from ..errors import CorruptFile

_HEADER = struct.Struct("<6QiI3QdQ")


def check_blob(path, dim, M, count):
    """Raise CorruptFile unless ``path`` is a complete hnswlib index of ``count`` items of
    width ``dim`` built with ``M``."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size < _HEADER.size:
            raise CorruptFile(f"{path}: {size} bytes, shorter than an hnswlib header")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as blob:
            (offset0, max_elements, cur, per_element, label_offset, offset_data, _, _,
             max_m, max_m0, m, _, _) = _HEADER.unpack_from(blob, 0)
            links0 = max_m0 * 4 + 4
            expected = {"items": (cur, count), "M": (m, M), "maxM": (max_m, M),
                        "maxM0": (max_m0, 2 * M), "offsetLevel0": (offset0, 0),
                        "offsetData": (offset_data, links0),
                        "vector bytes": (label_offset - offset_data, 4 * dim),
                        "bytes per item": (per_element, links0 + 4 * dim + 8)}
            wrong = {k: v for k, v in expected.items() if v[0] != v[1]}
            if wrong or max_elements < cur:
                raise CorruptFile(f"{path}: the hnswlib header disagrees with the manifest "
                                  f"(found, expected): {wrong or {'max_elements': max_elements}}")
            pos = _HEADER.size + cur * per_element
            upper = max_m * 4 + 4
            for _ in range(cur):
                if pos + 4 > size:
                    raise CorruptFile(f"{path}: cut short at {size} bytes")
                (n_bytes,) = struct.unpack_from("<I", blob, pos)
                if n_bytes % upper:
                    raise CorruptFile(f"{path}: a link list of {n_bytes} bytes")
                pos += 4 + n_bytes
    if pos != size:
        raise CorruptFile(f"{path}: {size} bytes, the index it describes has {pos}")
