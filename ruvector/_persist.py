"""Crash-safe on-disk generations with a checksummed manifest (shared by every store).

A store is a directory::

    manifest.json      {"format", "version", "generation", "files": {name: {bytes, sha256}},
                        ..., "manifest_sha256"}
    gen-000007/        the data files of the current generation
    gen-000006/        the previous generation, kept for readers that are still loading it
    .lock              held (flock) by the one writer

``write_generation`` writes every file into ``gen-N.tmp/``, fsyncs them and the folder,
renames it to ``gen-N/``, then writes ``manifest.json.tmp``, fsyncs and renames it over
``manifest.json`` (atomic on POSIX) and fsyncs the directory.  Only then are generations
older than the previous one removed.  A crash at any point leaves ``manifest.json`` naming a
complete generation: the old one or the new one; a failed write (disk full, file size limit)
raises StorageError and leaves the previous save as it was.  ``read_generation`` checks the
manifest's own SHA-256 (format version 2 on), the format name, refuses newer versions, and
verifies every file's size and SHA-256 before returning, so corrupt bytes never reach a
parser (hnswlib would crash on them).  ``load_generation`` retries from the new manifest
when a concurrent save retired the generation being read.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil

from .errors import CorruptFile, InvalidInput, LockedError, NotAStore, StorageError

MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 16 << 20
CHECKSUM_KEY = "manifest_sha256"
CHECKSUMMED_SINCE = 2  # the format version (of every store) whose manifests carry their hash
LOAD_ATTEMPTS = 5      # loads retried when concurrent saves retire the generation being read
_GEN = re.compile(r"^gen-(\d{6})$")


def store_path(path):
    """``path`` (str or os.PathLike) as a str; InvalidInput for anything else."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fsdecode(os.fspath(path))
    if not text or "\0" in text:
        raise InvalidInput(f"path {text!r} is empty or holds a NUL byte")
    return text


def _fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def writer_lock(root):
    """Exclusive, non-blocking writer lock on ``root/.lock``; LockedError when taken,
    StorageError when ``root`` is a file or cannot be created."""
    root = store_path(root)
    if os.path.exists(root) and not os.path.isdir(root):
        raise StorageError(f"{root} is a file, not a store directory")
    try:
        os.makedirs(root, exist_ok=True)
        fd = os.open(os.path.join(root, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot create the store directory {root}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{root} is locked by another writer") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def manifest_digest(manifest):
    """SHA-256 of the manifest's canonical JSON without its own checksum entry."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def _read_manifest(root):
    root = store_path(root)
    path = os.path.join(root, MANIFEST)
    if not os.path.isdir(root):
        raise NotAStore(f"{root} is {'a file' if os.path.exists(root) else 'missing'}: "
                        "not a saved store")
    try:
        with open(path, "rb") as f:
            raw = f.read(MANIFEST_MAX_BYTES + 1)
    except FileNotFoundError:
        raise NotAStore(f"{root} holds no {MANIFEST}: not a saved store") from None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MANIFEST_MAX_BYTES:
        raise CorruptFile(f"{path} is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptFile(f"{path} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CorruptFile(f"{path} lacks the 'files' table")
    version = manifest.get("version")
    if CHECKSUM_KEY in manifest or (isinstance(version, int) and version >= CHECKSUMMED_SINCE):
        if manifest.get(CHECKSUM_KEY) != manifest_digest(manifest):
            raise CorruptFile(f"{path} fails its own SHA-256 check (edited or damaged)")
    return manifest


def current_generation(root):
    """Number of the generation ``manifest.json`` names, or -1 when there is none."""
    try:
        gen = _read_manifest(root).get("generation", -1)
    except StorageError:
        return -1
    return gen if isinstance(gen, int) and not isinstance(gen, bool) and gen >= 0 else -1


def write_generation(root, format_name, version, writers, meta):
    """Write a new generation: ``writers`` maps file name -> callable(path) writing it.

    ``meta`` (JSON-serialisable) is stored in the manifest next to the file table.
    Must be called under :func:`writer_lock`.  An OSError while writing (disk full, file
    size limit, permissions) raises StorageError; the previous generation stays current.
    """
    root = store_path(root)
    old = current_generation(root)
    gen = old + 1
    name = f"gen-{gen:06d}"
    tmp = os.path.join(root, name + ".tmp")
    try:
        files = _write_files(tmp, writers)
        final = os.path.join(root, name)
        # A writer killed between this rename and the manifest swap leaves gen-N behind,
        # not referenced by the manifest (which still names N-1): it is safe to replace.
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        _fsync_path(root, directory=True)
        manifest = {"format": format_name, "version": version, "generation": gen,
                    "directory": name, "files": files, **meta}
        manifest[CHECKSUM_KEY] = manifest_digest(manifest)
        mtmp = os.path.join(root, MANIFEST + ".tmp")
        with open(mtmp, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(mtmp, os.path.join(root, MANIFEST))
        _fsync_path(root, directory=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.remove(os.path.join(root, MANIFEST + ".tmp"))
        reason = str(exc) if isinstance(exc, StorageError) else exc.strerror or str(exc)
        raise StorageError(f"saving to {root} failed ({reason}); the previous save "
                           "is unchanged") from None
    keep = {name, f"gen-{old:06d}"}
    for entry in os.listdir(root):  # older generations and leftovers of killed writers
        if entry not in keep and (_GEN.match(entry) or entry.endswith(".tmp")):
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
    return manifest


def write_file_atomic(path, write):
    """Write one file through ``write(tmp_path)`` into ``path + ".tmp"``, fsync it and rename it
    over ``path``: a reader sees the old file or the complete new one.  An OSError raises
    StorageError and leaves ``path`` as it was."""
    path = store_path(path)
    tmp = path + ".tmp"
    try:
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(os.path.dirname(os.path.abspath(path)), directory=True)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise StorageError(f"writing {path} failed ({exc.strerror or exc}); "
                           "nothing was replaced") from None


def _write_files(folder, writers):
    """Write and fsync every file of a generation into ``folder``; their size and SHA-256."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    files = {}
    for fname, write in writers.items():
        path = os.path.join(folder, fname)
        write(path)
        _fsync_path(path)
        files[fname] = {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}
    _fsync_path(folder, directory=True)
    return files


def read_generation(root, format_name, max_version):
    """Verified manifest and the folder of the current generation.

    Raises NotAStore (no store at ``root``), CorruptFile (wrong format, bad sizes or
    checksums, missing files) or StorageError for a newer format version.
    """
    manifest = _read_manifest(root)
    if manifest.get("format") != format_name:
        raise CorruptFile(f"{root} holds format {manifest.get('format')!r}, "
                          f"expected {format_name!r}")
    version = manifest.get("version")
    if not isinstance(version, int):
        raise CorruptFile(f"{root}/{MANIFEST} has no integer version")
    if version > max_version:
        raise StorageError(f"{root} was written by a newer ruvector (format version {version}; "
                           f"this version reads up to {max_version}): upgrade ruvector")
    directory = manifest.get("directory")
    if not isinstance(directory, str) or not _GEN.match(directory):
        raise CorruptFile(f"{root}/{MANIFEST} names no valid generation folder")
    gen_dir = os.path.join(root, directory)
    for fname, info in manifest["files"].items():
        if not isinstance(info, dict):
            raise CorruptFile(f"{root}/{MANIFEST}: the entry of {fname!r} is not a table")
        path = os.path.join(gen_dir, fname)
        if os.path.basename(fname) != fname or not os.path.isfile(path):
            raise CorruptFile(f"{path} is missing")
        size = os.path.getsize(path)
        if size != info.get("bytes"):
            raise CorruptFile(f"{path} has {size} bytes, the manifest says {info.get('bytes')}")
        if sha256_file(path) != info.get("sha256"):
            raise CorruptFile(f"{path} fails its SHA-256 check")
    return manifest, gen_dir


def load_generation(root, format_name, max_version, parse):
    """``parse(manifest, gen_dir)`` of the verified current generation.

    A save by another process may retire the generation while it is read: the read is
    retried from the new manifest (up to LOAD_ATTEMPTS times).  Otherwise an OSError of
    ``parse`` becomes StorageError and a RuntimeError (a native parser) CorruptFile.
    """
    for attempt in range(LOAD_ATTEMPTS):
        started = current_generation(root)
        try:
            manifest, gen_dir = read_generation(root, format_name, max_version)
            return parse(manifest, gen_dir)
        except (OSError, RuntimeError) as exc:
            if attempt + 1 < LOAD_ATTEMPTS and current_generation(root) != started:
                continue
            if isinstance(exc, StorageError):
                raise
            if isinstance(exc, RuntimeError):
                raise CorruptFile(f"{root}: cannot parse the saved files: {exc}") from None
            raise StorageError(f"cannot read {root}: {exc}") from None


def manifest_bytes(manifest):
    """Total size on disk of the data files a manifest lists."""
    return sum(f["bytes"] for f in manifest["files"].values())
