"""Load e3nn weights into kerase3 layers.

kerase3 keeps e3nn's flat weight order and normalisation constants, so loading is a
copy: ``load_weights(layer, e3nn_module.weight)`` and the two give the same outputs.
torch is not needed: pass numpy arrays, or torch tensors (converted with ``.detach()``).
"""

import numpy as np

from ..layers import FullyConnectedNet, Linear, TensorProduct

__all__ = ["load_weights"]


def _np(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _ensure_built(layer):
    if not layer.built:
        raise ValueError(f"load_weights: build {type(layer).__name__} first (call it once or call layer.build). Received: an unbuilt layer")


def load_weights(layer, weights, bias=None):
    """Copy e3nn weights into a kerase3 layer.

    Args:
        layer: a built `Linear`, `TensorProduct` (or any of its subclasses) or
            `FullyConnectedNet`.
        weights: e3nn's flat weight vector (``module.weight``); for a `FullyConnectedNet`
            the list of its layers' weights ``[layer0.weight, layer1.weight, ...]``, their
            flat concatenation, or the module's ``state_dict()``; for a `Linear` also a
            ``state_dict()`` (then ``bias`` comes from it).
        bias: for a `Linear` with biases, e3nn's ``module.bias``.
    """
    _ensure_built(layer)
    if isinstance(layer, FullyConnectedNet):
        if isinstance(weights, dict):
            weights = [weights[f"layer{i}.weight"] for i in range(len(layer.kernels))]
        if isinstance(weights, (list, tuple)):
            arrays = [_np(w) for w in weights]
        else:
            flat = _np(weights).ravel()
            sizes = [int(np.prod(k.shape)) for k in layer.kernels]
            if flat.size != sum(sizes):
                raise ValueError(f"load_weights: {layer!r} needs {sum(sizes)} weights. Received: {flat.size}")
            arrays = np.split(flat, np.cumsum(sizes)[:-1])
        if len(arrays) != len(layer.kernels):
            raise ValueError(f"load_weights: {layer!r} has {len(layer.kernels)} layers. Received: {len(arrays)} arrays")
        for k, a in zip(layer.kernels, arrays):
            k.assign(np.reshape(a, k.shape).astype(k.dtype))
        return layer
    if isinstance(layer, Linear):
        if isinstance(weights, dict):
            bias = weights.get("bias", bias)
            weights = weights["weight"]
        if not layer.internal_weights:
            raise ValueError(f"load_weights: {layer!r} has external weights; pass them to the call instead")
        w = _np(weights).ravel()
        if w.size != layer.weight_numel:
            raise ValueError(f"load_weights: {layer!r} needs {layer.weight_numel} weights. Received: {w.size}")
        layer.weight.assign(w.astype(layer.weight.dtype))
        if layer.bias_numel:
            b = np.zeros(layer.bias_numel) if bias is None else _np(bias).ravel()
            if b.size != layer.bias_numel:
                raise ValueError(f"load_weights: {layer!r} needs {layer.bias_numel} biases. Received: {b.size}")
            layer.bias.assign(b.astype(layer.bias.dtype))
        return layer
    if isinstance(layer, TensorProduct):
        if isinstance(weights, dict):
            weights = weights["weight"]
        w = _np(weights).ravel()
        if w.size != layer.weight_numel:
            raise ValueError(f"load_weights: {layer!r} needs {layer.weight_numel} weights. Received: {w.size}")
        if layer.weight_numel:
            if not hasattr(layer, "weight"):
                raise ValueError(f"load_weights: {layer!r} has external weights; pass them to the call instead")
            layer.weight.assign(w.astype(layer.weight.dtype))
        return layer
    raise ValueError(f"load_weights: unsupported layer {type(layer).__name__}. Received: {layer!r}")
