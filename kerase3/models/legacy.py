"""Models saved before the models floor was redesigned (kerase3 0.1's ``.keras`` files) loaded
into today's classes.

What changed in the files: `Potential` and `HamiltonianModel` keep their encoder layers inside a
`kerase3.layers.GraphEncoder`; `MACE` keeps its blocks as `kerase3.layers.MACEInteraction`,
`MACEProduct` and `MACEReadout` layers (they were dicts of layers); every convolution holds
``avg_num_neighbors`` as a variable (it was only in the config); and the arguments ``layers``,
``max_radius`` and ``num_neighbors`` are now ``num_interactions``, ``cutoff`` and
``avg_num_neighbors`` (the old names still load, with a ``DeprecationWarning``).

`load_legacy_model` reads such a file: the model is made from its config, and every stored
weight is moved to where the new layout keeps it, by a fixed table of path changes per class;
every old weight must be used and every new one found (or be a statistic, set from the config),
with its shape, or a ``ValueError`` names the path. `migrate_keras_file` writes the result as a
new ``.keras`` file.
"""

import io
import json
import os
import re
import tempfile
import zipfile

import h5py
import keras

__all__ = ["load_legacy_model", "migrate_keras_file"]

_MACE_INTERACTION = {"linear_up": "linear", "conv_tp_weights": "fully_connected_net", "linear": "linear_1",
                     "skip_tp": "fully_connected_tensor_product"}
_MACE_READOUT = {"linear": "linear", "linear_1": "linear", "linear_2": "linear_1"}


def _mace_path(path):
    m = re.match(r"interactions/mace_interaction(_\d+)?/(\w+)/(.*)", path)
    if m and m.group(2) in _MACE_INTERACTION:
        return f"blocks/container{m.group(1) or ''}/{_MACE_INTERACTION[m.group(2)]}/{m.group(3)}"
    m = re.match(r"layers/mace_product(_\d+)?/(\w+)/(.*)", path)
    if m:
        name = "symmetric_contraction" if m.group(2) == "symmetric_contractions" else "linear_2"
        return f"blocks/container{m.group(1) or ''}/{name}/{m.group(3)}"
    m = re.match(r"layers/mace_readout(_\d+)?/(\w+)/(.*)", path)
    if m:
        return f"blocks/container{m.group(1) or ''}/container_3/{_MACE_READOUT[m.group(2)]}/{m.group(3)}"
    return path


def _potential_path(path):
    path = re.sub(r"^encoder/", "", path)
    m = re.match(r"layers/linear(_1)?/(.*)", path)  # the readouts: the lift was the model's first Linear
    if m:
        return f"layers/linear_{2 if m.group(1) else 1}/{m.group(2)}"
    return path


#: per class (its registered name): the path of a weight in the new layout -> in the old one
OLD_PATHS = {"kerase3>Potential": _potential_path, "kerase3>HamiltonianModel": lambda p: re.sub(r"^encoder/", "", p),
             "kerase3>MACE": _mace_path, "kerase3>GatedConvNetwork": lambda p: p}
#: weights the old layout did not store: the statistics, set from the config
_STATISTIC = re.compile(r"(convolution(_\d+)?|mace_interaction(_\d+)?|final)/vars/0$")


def _datasets(data):
    with h5py.File(io.BytesIO(data), "r") as h:
        out = {}
        h.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _rewrite(h5_bytes, values):
    """``h5_bytes`` (a weights file) with every dataset replaced by ``values[path]``."""
    buf = io.BytesIO(h5_bytes)
    with h5py.File(buf, "r+") as h:
        for name, value in values.items():
            h[name][...] = value
    return buf.getvalue()


def load_legacy_model(path):
    """A model saved by kerase3 0.1 (`Potential`, `MACE`, `HamiltonianModel`, `GatedConvNetwork`)
    as today's class, with its weights and statistics.

    Raises:
        ValueError: naming the class or the weight path, for files this function does not know.
    """
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        old = _datasets(z.read("model.weights.h5"))
    key = f"{config.get('module', '').split('.')[0] or 'kerase3'}>{config.get('class_name')}"
    key = config.get("registered_name") or key
    if key not in OLD_PATHS:
        raise ValueError(f"load_legacy_model: {path} holds a {config.get('class_name')!r} ({key}); known: {sorted(OLD_PATHS)}")
    model = keras.saving.deserialize_keras_object(config)  # built from its build config
    if not model.built:
        model.build()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "fresh.keras")
        model.save(fresh)
        with zipfile.ZipFile(fresh) as z:
            members = {n: z.read(n) for n in z.namelist()}
    new = _datasets(members["model.weights.h5"])
    values, used = {}, set()
    for name, value in new.items():
        source = OLD_PATHS[key](name)
        if source in old:
            if old[source].shape != value.shape:
                raise ValueError(f"load_legacy_model: {path}: weight {source!r} has shape {old[source].shape}; "
                                 f"{name!r} needs {value.shape}")
            values[name] = old[source]
            used.add(source)
        elif not (_STATISTIC.search(name) and value.shape == ()):
            raise ValueError(f"load_legacy_model: {path} has no weight {source!r} for {name!r} (not a kerase3 0.1 file "
                             f"of a {config.get('class_name')}?)")
    unused = sorted(set(old) - used)
    if unused:
        raise ValueError(f"load_legacy_model: {path}: weight {unused[0]!r} has no place in today's "
                         f"{config.get('class_name')} ({len(unused)} unused)")
    members["model.weights.h5"] = _rewrite(members["model.weights.h5"], values)
    with tempfile.TemporaryDirectory() as tmp:
        moved = os.path.join(tmp, "moved.keras")
        with zipfile.ZipFile(moved, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
        return keras.saving.load_model(moved)


def migrate_keras_file(old_path, new_path):
    """`load_legacy_model` of ``old_path``, saved to ``new_path``; returns the model."""
    model = load_legacy_model(old_path)
    model.save(new_path)
    return model
