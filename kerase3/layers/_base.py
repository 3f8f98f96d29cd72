"""Shared helpers of kerase3 layers (private)."""

import keras

from ..o3 import Irreps


def irreps_arg(value, layer, arg):
    """``Irreps`` from a string/Irreps, with an error naming the layer and argument."""
    try:
        return Irreps(value)
    except ValueError as e:
        raise ValueError(f"{layer}: {arg} is not valid irreps ({e}). Received: {arg}={value!r}") from None


def geometry_dtype(dtype):
    """Layers that compute geometry keep float32 under a mixed-precision policy."""
    if dtype is None and keras.config.dtype_policy().name.startswith("mixed"):
        return "float32"
    return dtype


def normal_init():
    """N(0, 1): e3nn's initialisation; normalisation lives in the forward pass."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=1.0)
