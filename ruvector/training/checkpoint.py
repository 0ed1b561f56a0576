"""Checkpoints: a directory in the checksummed generation format of the stores
(``manifest.json`` + ``gen-NNNNNN/``) holding ``tensors.npz`` (module parameters and
optimizer state, read back with ``allow_pickle=False``) and the JSON configs that rebuild
the module and its optimizer.  Writes are atomic; a damaged file raises CorruptFile, a
config that does not fit the tensors InvalidConfig."""
import json
import os
from collections import namedtuple

import numpy as np

from .. import _persist
from ..errors import CorruptFile, InvalidConfig
from ..nn.module import from_config
from .optim import build_optimizer

FORMAT = "ruvector.checkpoint"
FORMAT_VERSION = 2  # 2: the manifest carries its own SHA-256

Checkpoint = namedtuple("Checkpoint", "module optimizer extra")


def save_checkpoint(module, path, optimizer=None, extra=None):
    """Save ``module`` (and ``optimizer``'s state, and a JSON-able ``extra`` dict such as the
    epoch) to the directory ``path``; replaces an earlier checkpoint there atomically."""
    tensors = {f"param/{k}": v for k, v in module.state_dict().items()}
    meta = {"module": module.config(), "extra": extra or {}}
    if optimizer is not None:
        if optimizer.module is not module:
            raise InvalidConfig("the optimizer does not belong to this module")
        state = optimizer.state_dict()
        build_optimizer(module, state)  # what load_checkpoint will rebuild: refuse it now
        for name, slots in state.pop("state").items():
            for key, arr in slots.items():
                tensors[f"optim/{key}/{name}"] = arr
        meta["optimizer"] = state
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise InvalidConfig(f"checkpoint metadata is not JSON-serialisable: {exc}") from None

    def write(p):
        with open(p, "wb") as fh:
            np.savez(fh, **tensors)
    with _persist.writer_lock(path):
        _persist.write_generation(path, FORMAT, FORMAT_VERSION, {"tensors.npz": write}, meta)


def load_checkpoint(path):
    """Rebuild ``Checkpoint(module, optimizer or None, extra)`` from :func:`save_checkpoint`."""
    return _persist.load_generation(path, FORMAT, FORMAT_VERSION,
                                    lambda m, d: _from_generation(path, m, d))


def _from_generation(path, manifest, gen):
    try:
        with np.load(os.path.join(gen, "tensors.npz"), allow_pickle=False) as data:
            tensors = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptFile(f"{path}: cannot read tensors.npz: {exc}") from None
    if "module" not in manifest:
        raise CorruptFile(f"{path}: manifest has no module config")
    module = from_config(manifest["module"])
    module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("param/")})
    optimizer = None
    if "optimizer" in manifest:
        try:
            state = dict(manifest["optimizer"])
            slots = {}
            for key, arr in tensors.items():
                if key.startswith("optim/"):
                    _, slot, name = key.split("/", 2)
                    slots.setdefault(name, {})[slot] = arr
        except (TypeError, ValueError) as exc:
            raise CorruptFile(f"{path}: bad optimizer state: {exc}") from None
        optimizer = build_optimizer(module, state)
        state["state"] = slots
        optimizer.load_state_dict(state)
    return Checkpoint(module, optimizer, manifest.get("extra", {}))
