"""Crash-safe on-disk generations with a checksummed manifest (shared by every store).

A store is a directory::

    manifest.json      {"format", "version", "generation", "files": {name: {bytes, sha256}}, ...}
    gen-000007/        the data files of the current generation
    .lock              held (flock) by the one writer

``write_generation`` writes every file into ``gen-N.tmp/``, fsyncs them and the folder,
renames it to ``gen-N/``, then writes ``manifest.json.tmp``, fsyncs and renames it over
``manifest.json`` (atomic on POSIX) and fsyncs the directory.  Only then are older
generations removed.  A crash at any point leaves ``manifest.json`` naming a complete
generation: the old one or the new one.  ``read_generation`` checks the format name, refuses
newer versions, and verifies every file's size and SHA-256 before returning, so corrupt
bytes never reach a parser (hnswlib would crash on them).
"""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil

from .errors import CorruptFile, LockedError, StorageError

MANIFEST = "manifest.json"
_GEN = re.compile(r"^gen-(\d{6})$")


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
    """Exclusive, non-blocking writer lock on ``root/.lock``; LockedError when taken."""
    os.makedirs(root, exist_ok=True)
    fd = os.open(os.path.join(root, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{root} is locked by another writer") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_manifest(root):
    path = os.path.join(root, MANIFEST)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise StorageError(f"{root} holds no {MANIFEST}: not a saved store") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptFile(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CorruptFile(f"{path} lacks the 'files' table")
    return manifest


def current_generation(root):
    """Number of the generation ``manifest.json`` names, or -1 when there is none."""
    try:
        return int(_read_manifest(root).get("generation", -1))
    except StorageError:
        return -1


def write_generation(root, format_name, version, writers, meta):
    """Write a new generation: ``writers`` maps file name -> callable(path) writing it.

    ``meta`` (JSON-serialisable) is stored in the manifest next to the file table.
    Must be called under :func:`writer_lock`.
    """
    os.makedirs(root, exist_ok=True)
    gen = current_generation(root) + 1
    name = f"gen-{gen:06d}"
    tmp = os.path.join(root, name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    files = {}
    for fname, write in writers.items():
        path = os.path.join(tmp, fname)
        write(path)
        _fsync_path(path)
        files[fname] = {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}
    _fsync_path(tmp, directory=True)
    final = os.path.join(root, name)
    # A writer killed between this rename and the manifest swap leaves gen-N behind, not
    # referenced by the manifest (which still names N-1): it is safe to replace.
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    _fsync_path(root, directory=True)
    manifest = {"format": format_name, "version": version, "generation": gen,
                "directory": name, "files": files, **meta}
    mtmp = os.path.join(root, MANIFEST + ".tmp")
    with open(mtmp, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(mtmp, os.path.join(root, MANIFEST))
    _fsync_path(root, directory=True)
    for entry in os.listdir(root):  # older generations and leftovers of killed writers
        if entry != name and (_GEN.match(entry) or entry.endswith(".tmp")):
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
    return manifest


def read_generation(root, format_name, max_version):
    """Verified manifest and the folder of the current generation.

    Raises StorageError (no store), CorruptFile (wrong format, bad sizes or checksums,
    missing files) or StorageError for a newer format version.
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
        path = os.path.join(gen_dir, fname)
        if os.path.basename(fname) != fname or not os.path.isfile(path):
            raise CorruptFile(f"{path} is missing")
        size = os.path.getsize(path)
        if size != info.get("bytes"):
            raise CorruptFile(f"{path} has {size} bytes, the manifest says {info.get('bytes')}")
        if sha256_file(path) != info.get("sha256"):
            raise CorruptFile(f"{path} fails its SHA-256 check")
    return manifest, gen_dir


def manifest_bytes(manifest):
    """Total size on disk of the data files a manifest lists."""
    return sum(f["bytes"] for f in manifest["files"].values())
