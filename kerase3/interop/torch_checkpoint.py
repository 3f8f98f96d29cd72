"""PyTorch checkpoints read without torch: ``torch.save``'s zip format (``data.pkl`` plus raw
storages under ``data/``), unpickled with an allow-list.

Only what checkpoints of tensors and plain configuration need is rebuilt: containers, numbers,
strings, numpy arrays, ``torch.*Storage`` and ``torch._utils._rebuild_tensor_v2`` (tensors become
numpy arrays with their shape, strides and offset), ``torch.device`` (its string). Anything else a
pickle asks for -- a class of a training library, ``os.system`` -- is refused with a
``ValueError`` naming it, before it is imported.

Example:
    >>> from kerase3.interop.torch_checkpoint import read_torch_checkpoint
    >>> ckpt = read_torch_checkpoint("checkpoint.pth")  # doctest: +SKIP
    >>> ckpt["model_state_dict"]["weight"].shape  # doctest: +SKIP
    (64, 128)
"""

import io
import pickle
import zipfile

import numpy as np

__all__ = ["read_torch_checkpoint", "ALLOWED"]

_STORAGES = {"DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
             "BFloat16Storage": None, "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
             "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _Storage:
    def __init__(self, name):
        self.name = name


class _Device(str):
    """``torch.device("cpu")`` as the string ``"cpu"``."""

    def __new__(cls, *args):
        return super().__new__(cls, ":".join(str(a) for a in args))


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not size:
        return storage[offset].copy()
    span = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset
    if span > storage.size:
        raise ValueError(f"read_torch_checkpoint: a tensor of shape {size} reaches beyond its storage ({storage.size})")
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * storage.itemsize for s in stride)).copy()


def _numpy_reconstruct(*args):
    """numpy's own pickles of arrays (in the checkpoint's configuration)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct(*args)


#: ``(module, name)`` -> what it is rebuilt as
ALLOWED = {
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch", "device"): _Device,
    ("_codecs", "encode"): __import__("codecs").encode,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED[(_module, "_reconstruct")] = _numpy_reconstruct
for _name in _STORAGES:
    ALLOWED[("torch", _name)] = _Storage(_name)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, storages, where):
        super().__init__(io.BytesIO(data))
        self.storages, self.where = storages, where

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise ValueError(f"read_torch_checkpoint: {self.where} asks for {module}.{name}, which is not on the allow-list "
                             "(tensors, numpy arrays, containers, torch.device); refused")
        return ALLOWED[(module, name)]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise ValueError(f"read_torch_checkpoint: {self.where} holds a persistent object {pid!r:.80} that is not a storage")
        _, kind, key, _location, numel = pid
        name = kind.name if isinstance(kind, _Storage) else str(kind)
        dtype = _STORAGES.get(name)
        if dtype is None:
            raise ValueError(f"read_torch_checkpoint: {self.where} holds a {name}, which numpy does not hold")
        return self.storages(str(key), np.dtype(dtype), int(numel))


def read_torch_checkpoint(path):
    """The object ``torch.save`` wrote to ``path`` (a zip file), tensors as numpy arrays.

    Raises:
        ValueError: for files that are not torch zip checkpoints (TorchScript archives included),
            classes outside `ALLOWED` (named), and storages that do not match their tensors.
    """
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"read_torch_checkpoint: {path} is not a torch zip checkpoint (torch.save since 1.6)") from None
    with z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1 or any(n.endswith("/constants.pkl") for n in names):
            raise ValueError(f"read_torch_checkpoint: {path} is not a torch.save checkpoint "
                             f"({'a TorchScript archive' if any(n.endswith('constants.pkl') for n in names) else 'no data.pkl'})")
        root = pkl[0][: -len("data.pkl")]
        order = z.read(root + "byteorder").decode().strip() if root + "byteorder" in names else "little"
        cache = {}

        def storage(key, dtype, numel):
            if key not in cache:
                raw = z.read(f"{root}data/{key}")
                arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<" if order == "little" else ">"))
                if arr.size < numel:
                    raise ValueError(f"read_torch_checkpoint: {path}: storage {key} holds {arr.size} values, {numel} expected")
                cache[key] = arr.astype(dtype.newbyteorder("="))
            return cache[key]

        return _Unpickler(z.read(pkl[0]), storage, str(path)).load()
