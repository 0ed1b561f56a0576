import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ruvector import CorruptFile, InvalidInput, LockedError, NotAStore, StorageError
from ruvector import _persist
from ruvector.index import VectorStore


def _store(rng, n=500, dim=8):
    store = VectorStore(dim, "l2")
    store.add(rng.standard_normal((n, dim)), metadata=[{"i": i} for i in range(n)])
    return store


def test_save_load_gives_same_results(rng, tmp_path):
    store = _store(rng)
    store.delete([3, 4, 5])
    path = tmp_path / "s"
    store.save(path)
    back = VectorStore.load(path)
    q = rng.standard_normal((20, 8))
    a, b = store.search(q, 10), back.search(q, 10)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)
    assert len(back) == len(store) and 3 not in back
    assert back.metadata([7]).column("i").to_pylist() == [7]
    back.add(rng.standard_normal((2, 8)))  # the loaded store keeps working (and grows)
    assert len(back) == len(store) + 2
    store.save(path)  # a second generation; the first is kept for readers still on it
    store.save(path)  # a third retires the first
    gens = sorted(e for e in os.listdir(path) if e.startswith("gen-"))
    assert gens == ["gen-000001", "gen-000002"]


def _files(path):
    manifest = json.loads((path / "manifest.json").read_text())
    return manifest, path / manifest["directory"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
@pytest.mark.parametrize("target", ["index.hnsw", "slots.arrow", "metadata.arrow"])
def test_corruption_is_detected_before_parsing(rng, tmp_path, damage, target):
    path = tmp_path / "s"
    _store(rng).save(path)
    _, gen = _files(path)
    f = gen / target
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[len(data) // 3] ^= 0x40
        f.write_bytes(bytes(data))
    else:
        f.unlink()
    with pytest.raises(CorruptFile):
        VectorStore.load(path)


def _write_signed(path, manifest):
    """Write a crafted manifest whose own checksum is valid again."""
    manifest = {k: v for k, v in manifest.items() if k != _persist.CHECKSUM_KEY}
    manifest[_persist.CHECKSUM_KEY] = _persist.manifest_digest(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_manifest_checks(rng, tmp_path):
    path = tmp_path / "s"
    _store(rng).save(path)
    manifest, _ = _files(path)
    _write_signed(path, {**manifest, "version": 99})
    with pytest.raises(StorageError, match="newer"):
        VectorStore.load(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptFile):
        VectorStore.load(path)
    (path / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(CorruptFile, match="not valid JSON"):
        VectorStore.load(path)
    _write_signed(path, {**manifest, "format": "other"})
    with pytest.raises(CorruptFile, match="format"):
        VectorStore.load(path)
    with pytest.raises(NotAStore, match="not a saved store"):
        VectorStore.load(tmp_path / "missing")
    # format version 1 (before manifests carried their hash) still loads
    v1 = {k: v for k, v in manifest.items() if k != _persist.CHECKSUM_KEY}
    (path / "manifest.json").write_text(json.dumps({**v1, "version": 1}))
    assert len(VectorStore.load(path)) == 500
    (path / "manifest.json").write_text(json.dumps({**v1, "version": 2}))  # unsigned v2
    with pytest.raises(CorruptFile, match="SHA-256"):
        VectorStore.load(path)


def test_every_manifest_edit_is_refused_or_harmless(rng, tmp_path):
    path = tmp_path / "s"
    store = _store(rng, n=50)
    store.delete([7])
    store.save(path)
    raw = (path / "manifest.json").read_bytes()
    q = rng.standard_normal((5, 8))
    expected = store.search(q, 5).ids
    for pos in range(len(raw)):
        for flip in (0x01, 0x20):
            (path / "manifest.json").write_bytes(raw[:pos] + bytes([raw[pos] ^ flip])
                                                 + raw[pos + 1:])
            try:
                back = VectorStore.load(path)
            except StorageError:
                continue
            # an edit that still loads changed nothing the store holds
            assert len(back) == 49 and 7 not in back and back._next_id == 50
            np.testing.assert_array_equal(back.search(q, 5).ids, expected)


def _resign_files(path, manifest):
    gen = path / manifest["directory"]
    for name, entry in manifest["files"].items():
        entry["bytes"] = (gen / name).stat().st_size
        entry["sha256"] = _persist.sha256_file(gen / name)
    _write_signed(path, manifest)


def test_crafted_but_consistently_signed_stores_are_refused(rng, tmp_path):
    """Checksums say the bytes are as written; the content is checked as well."""
    import pyarrow as pa
    from ruvector._arrow import read_ipc, write_ipc
    small, other = tmp_path / "small", tmp_path / "other"
    _store(rng, n=40, dim=8).save(small)
    _store(rng, n=40, dim=16).save(other)
    base, gen = _files(small)
    cases = {"next_id": {"next_id": 5}, "count": {"count": 39}, "slots": {"slots": 2**40},
             "dim": {"dim": 10**9}, "M": {"M": 1}, "metric": {"metric": "l1"},
             "slots type": {"slots": "40"}, "seed type": {"seed": [1]},
             "files entry": {"files": {"index.hnsw": "x"}}, "files type": {"files": 3}}
    for what, edit in cases.items():
        _write_signed(small, {**base, **edit})
        with pytest.raises(CorruptFile):
            VectorStore.load(small)
    _write_signed(small, {k: v for k, v in base.items() if k != "next_id"})
    with pytest.raises(CorruptFile, match="next_id"):
        VectorStore.load(small)
    # an hnswlib blob of a 16-d store in an 8-d store
    other_manifest, other_gen = _files(other)
    blob = gen / "index.hnsw"
    original = blob.read_bytes()
    blob.write_bytes((other_gen / "index.hnsw").read_bytes())
    _resign_files(small, json.loads(json.dumps(base)))
    with pytest.raises(CorruptFile, match="hnswlib header"):
        VectorStore.load(small)
    blob.write_bytes(original)
    slots = read_ipc(str(gen / "slots.arrow"))
    for bad_ids, bad_vec, match in ((np.r_[0, 0, np.arange(2, 40)], None, "repeated ids"),
                                    (None, np.nan, "NaN/Inf"),
                                    ([None] + list(range(1, 40)), None, "null ids")):
        ids = slots.column("id").to_numpy() if bad_ids is None else bad_ids
        vec = slots.column("vector").combine_chunks().flatten().to_numpy().copy()
        if bad_vec is not None:
            vec[3] = bad_vec
        table = pa.table({"id": pa.array(ids, pa.int64()),
                          "vector": pa.FixedSizeListArray.from_arrays(pa.array(vec), 8)})
        write_ipc(table, str(gen / "slots.arrow"))
        _resign_files(small, json.loads(json.dumps(base)))
        with pytest.raises(CorruptFile, match=match):
            VectorStore.load(small)
    write_ipc(slots, str(gen / "slots.arrow"))
    write_ipc(pa.table({"i": list(range(5))}), str(gen / "metadata.arrow"))
    _resign_files(small, json.loads(json.dumps(base)))
    with pytest.raises(CorruptFile, match="metadata.arrow has 5 rows"):
        VectorStore.load(small)


def test_paths_that_are_not_stores_raise_typed_errors(rng, tmp_path):
    store = _store(rng, n=10)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(StorageError, match="is a file"):
        store.save(a_file)
    with pytest.raises(StorageError, match="cannot create"):
        store.save(a_file / "below")
    with pytest.raises(NotAStore, match="a file"):
        VectorStore.load(a_file)
    with pytest.raises(NotAStore, match="no manifest.json"):
        VectorStore.load(tmp_path)
    with pytest.raises(StorageError, match="cannot create"):  # not writable, even by root
        store.save("/proc/ruvector-store")
    for bad in (None, 3, b"\0"):
        with pytest.raises(InvalidInput, match="path"):
            store.save(bad)
        with pytest.raises(InvalidInput, match="path"):
            VectorStore.load(bad)


def test_second_writer_is_refused(rng, tmp_path):
    path = tmp_path / "s"
    store = _store(rng)
    with _persist.writer_lock(str(path)):
        with pytest.raises(LockedError):
            store.save(path)
    store.save(path)  # released


SAVER = """
import itertools, sys
import numpy as np
from ruvector.index import VectorStore
path, na, nb, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
a, b = VectorStore(16, "l2"), VectorStore(16, "l2")
a.add(rng.standard_normal((na, 16)), metadata=[{"v": "a"}] * na)
b.add(rng.standard_normal((nb, 16)), metadata=[{"v": "b"}] * nb)
a.save(path)
print("ready", flush=True)
for _ in range(rounds) if rounds else itertools.count():  # 0 rounds: until killed
    b.save(path)
    a.save(path)
"""


def _saver(path, na, nb, rounds):
    """A process saving two states (na items tagged a, nb tagged b) in turn into ``path``."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SAVER), str(path), str(na),
                             str(nb), str(rounds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_kill_during_save_leaves_a_loadable_state(tmp_path):
    """SIGKILL a process that saves two states in a loop, at several moments."""
    path = tmp_path / "s"
    rng = np.random.default_rng(1)
    for delay in [0.0, 0.013, 0.031, 0.057, 0.09, 0.15, 0.23]:
        proc = _saver(path, 3000, 4000, 0)
        time.sleep(delay + rng.random() * 0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store = VectorStore.load(path)
        assert len(store) in (3000, 4000)
        tag = store.metadata([0]).column("v").to_pylist()[0]
        assert tag == ("a" if len(store) == 3000 else "b")


def test_loads_during_another_process_saves_always_succeed(tmp_path):
    path = tmp_path / "s"
    proc = _saver(path, 1500, 2000, 60)
    try:
        loads = 0
        while proc.poll() is None:
            store = VectorStore.load(path)
            tag = store.metadata([0]).column("v").to_pylist()[0]
            assert (len(store), tag) in ((1500, "a"), (2000, "b"))
            loads += 1
        assert proc.returncode == 0 and loads >= 5
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


FULL_DISK = """
import resource, signal, sys
import numpy as np
from ruvector import StorageError
from ruvector.index import VectorStore
path = sys.argv[1]
rng = np.random.default_rng(0)
small = VectorStore(16, "l2")
small.add(rng.standard_normal((100, 16)))
small.save(path)
big = VectorStore(16, "l2")
big.add(rng.standard_normal((5000, 16)))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
try:
    big.save(path)
except StorageError as exc:
    print("StorageError", exc)
"""


@pytest.mark.parametrize("limit, cause", [(50_000, "File too large"),
                                          (420_000, "hnswlib wrote an incomplete index")])
def test_a_save_that_runs_out_of_space_leaves_the_previous_save(tmp_path, limit, cause):
    """The file-size limit cuts the Arrow file (50 kB) or hnswlib's blob (420 kB)."""
    path = tmp_path / "s"
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(FULL_DISK), str(path),
                          str(limit)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("StorageError") and "previous save" in out.stdout
    assert cause in out.stdout
    assert len(VectorStore.load(path)) == 100
    assert sorted(os.listdir(path)) == [".lock", "gen-000000", "manifest.json"]
