"""Optional glibc malloc tuning for workloads that allocate large temporaries per call.

glibc serves allocations above M_MMAP_THRESHOLD with fresh mmap pages and returns freed heap
memory above M_TRIM_THRESHOLD to the OS; a later array of the same size then page-faults on
every 4 KiB page it touches (about 0.25 ms per MiB).  Raising both keeps freed memory for
reuse.  This changes the allocator of the whole process, so ruvector never calls it on its
own: applications (and the benchmarks, which report it) opt in.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_threshold=1 << 30, trim_threshold=1 << 30):
    """Raise glibc's mmap and trim thresholds; returns True when applied (glibc only)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, min(int(mmap_threshold), 2**31 - 1))
    ok &= mallopt(M_TRIM_THRESHOLD, min(int(trim_threshold), 2**31 - 1))
    return bool(ok)
