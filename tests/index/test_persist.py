import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ruvector import CorruptFile, LockedError, StorageError
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
    store.save(path)  # a second generation replaces the first
    gens = [e for e in os.listdir(path) if e.startswith("gen-")]
    assert gens == ["gen-000001"]


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


def test_manifest_checks(rng, tmp_path):
    path = tmp_path / "s"
    _store(rng).save(path)
    manifest, _ = _files(path)
    (path / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(StorageError, match="newer"):
        VectorStore.load(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptFile):
        VectorStore.load(path)
    (path / "manifest.json").write_text(json.dumps({**manifest, "format": "other"}))
    with pytest.raises(CorruptFile, match="format"):
        VectorStore.load(path)
    with pytest.raises(StorageError, match="not a saved store"):
        VectorStore.load(tmp_path / "missing")


def test_second_writer_is_refused(rng, tmp_path):
    path = tmp_path / "s"
    store = _store(rng)
    with _persist.writer_lock(str(path)):
        with pytest.raises(LockedError):
            store.save(path)
    store.save(path)  # released


CHILD = """
import sys
import numpy as np
from ruvector.index import VectorStore
path = sys.argv[1]
rng = np.random.default_rng(0)
a, b = VectorStore(16, "l2"), VectorStore(16, "l2")
a.add(rng.standard_normal((3000, 16)), metadata=[{"v": "a"}] * 3000)
b.add(rng.standard_normal((4000, 16)), metadata=[{"v": "b"}] * 4000)
a.save(path)
print("ready", flush=True)
while True:
    b.save(path)
    a.save(path)
"""


def test_kill_during_save_leaves_a_loadable_state(tmp_path):
    """SIGKILL a process that saves two states in a loop, at several moments."""
    path = tmp_path / "s"
    rng = np.random.default_rng(1)
    for delay in [0.0, 0.013, 0.031, 0.057, 0.09, 0.15, 0.23]:
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay + rng.random() * 0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store = VectorStore.load(path)
        assert len(store) in (3000, 4000)
        tag = store.metadata([0]).column("v").to_pylist()[0]
        assert tag == ("a" if len(store) == 3000 else "b")
