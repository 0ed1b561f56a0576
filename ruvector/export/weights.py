"""The JSON weights format: ``NAME.json`` (module config, tensor table) and ``NAME.bin``
(the tensors' bytes), for runtimes that read neither npz nor ONNX.

``NAME.json``::

    {"format": "ruvector.weights", "version": 1,
     "module": <Module.config()>,            # class path + constructor arguments
     "data": "NAME.bin", "byte_order": "little", "alignment": 64,
     "size": <bytes of NAME.bin>, "sha256": <hex digest of NAME.bin>,
     "tensors": [{"name": "attn.weight", "dtype": "float32", "shape": [8, 8],
                  "offset": 0, "nbytes": 256}, ...]}

Each tensor is C-ordered (row-major), little-endian, starting at an ``offset`` that is a
multiple of 64 bytes (zero padding between); names are ``Module.parameters()`` keys.
"""
import hashlib
import json
import os

import numpy as np

from .._persist import store_path, write_file_atomic
from ..errors import CorruptFile, InvalidConfig, NotFound
from ..nn.module import from_config

FORMAT, VERSION, ALIGN = "ruvector.weights", 1, 64


def _pad(n):
    return -n % ALIGN


def save_weights_json(module, path):
    """Write ``module`` as ``path`` (JSON, ends in .json) and the tensor file beside it
    (same name, ``.bin``); both are written atomically, the data first.  Returns the JSON
    path."""
    path = store_path(path)
    if not path.endswith(".json"):
        raise InvalidConfig(f"the weights file must end in .json, got {path!r}")
    bin_path = path[:-5] + ".bin"
    table, chunks, offset = [], [], 0
    for name, value in module.state_dict().items():
        arr = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        table.append({"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape),
                      "offset": offset, "nbytes": arr.nbytes})
        chunks += [arr.tobytes(), b"\0" * _pad(arr.nbytes)]
        offset += arr.nbytes + _pad(arr.nbytes)
    data = b"".join(chunks)
    meta = {"format": FORMAT, "version": VERSION, "module": module.config(),
            "data": os.path.basename(bin_path), "byte_order": "little", "alignment": ALIGN,
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "tensors": table}
    text = json.dumps(meta, indent=1)

    def writer(content, mode):
        def write(tmp):
            with open(tmp, mode) as fh:
                fh.write(content)
        return write

    write_file_atomic(bin_path, writer(data, "wb"))
    write_file_atomic(path, writer(text, "w"))
    return path


def load_weights_json(path):
    """The module saved by :func:`save_weights_json` (CorruptFile when the data file does not
    match its table or digest)."""
    path = store_path(path)
    try:
        with open(path) as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such weights file") from None
    except (OSError, ValueError) as exc:
        raise CorruptFile(f"{path}: not a weights JSON file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CorruptFile(f"{path}: not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise CorruptFile(f"{path}: {FORMAT} version {meta.get('version')!r} is not supported "
                          f"(this build reads {VERSION})")
    bin_path = os.path.join(os.path.dirname(path), str(meta.get("data", "")))
    try:
        with open(bin_path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot read its data file {bin_path} ({exc})") from None
    if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise CorruptFile(f"{bin_path} does not match the size / SHA-256 in {path}")
    state = {}
    try:
        for t in meta["tensors"]:
            dtype = np.dtype(t["dtype"]).newbyteorder("<")
            count = int(np.prod(t["shape"], dtype=np.int64))
            if t["nbytes"] != count * dtype.itemsize or t["offset"] + t["nbytes"] > len(data):
                raise ValueError(f"tensor {t['name']!r} does not fit the data file")
            state[t["name"]] = np.frombuffer(data, dtype, count, t["offset"]).reshape(t["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFile(f"{path}: bad tensor table ({exc})") from None
    module = from_config(meta["module"])
    module.load_state_dict(state)
    return module
