"""Scalar activations with e3nn's second-moment normalisation.

``normalize2mom(act)`` rescales ``act`` so that ``E[act(z)^2] = 1`` for ``z ~ N(0, 1)``.
For the named activations below the constant is e3nn 0.6's own (it estimates the
moment by Monte Carlo with a fixed seed), so that networks loaded from e3nn give
e3nn's numbers; any other callable gets the exact moment by Gauss-Hermite quadrature.
"""

import math

import numpy as np
from keras import ops

from .. import backend

__all__ = ["get_activation", "normalize2mom", "activation_parity", "ACTIVATIONS"]


def _ssp(x):
    return ops.softplus(x) - math.log(2.0)


def _gelu(x):  # exact (erf) GELU, like torch's default
    return 0.5 * x * (1.0 + ops.erf(x / math.sqrt(2.0)))


def _mish(x):
    return x * backend.tanh(ops.softplus(x))


ACTIVATIONS = {
    "silu": ops.silu,
    "swish": ops.silu,
    "tanh": backend.tanh,
    "sigmoid": ops.sigmoid,
    "relu": ops.relu,
    "gelu": _gelu,
    "softplus": ops.softplus,
    "abs": ops.abs,
    "elu": ops.elu,
    "selu": ops.selu,
    "ssp": _ssp,
    "sin": backend.sin,
    "cos": backend.cos,
    "softsign": ops.softsign,
    "mish": _mish,
}

# e3nn 0.6's normalize2mom constants (tests/reference/make_layer_fixtures.py prints them)
_E3NN_CONSTANTS = {
    "silu": 1.6791767923989418,
    "swish": 1.6791767923989418,
    "tanh": 1.5937334472592695,
    "sigmoid": 1.8467055342154763,
    "relu": 1.4163393446331365,
    "gelu": 1.5360642850770578,
    "softplus": 1.0426436590527184,
    "abs": 1.001110600838467,
    "elu": 1.2467863885570512,
    "selu": 1.001049225017453,
    "ssp": 1.878204668541552,
    "sin": 1.5218334864623193,
    "cos": 1.326609063570005,
    "softsign": 2.339261168724108,
    "mish": 1.4891609082630326,
}


def get_activation(act):
    """A callable from a name in ``ACTIVATIONS``, a callable, or None (returns None)."""
    if act is None or callable(act):
        return act
    if isinstance(act, str) and act in ACTIVATIONS:
        return ACTIVATIONS[act]
    raise ValueError(f"unknown activation {act!r}; known names are {sorted(ACTIVATIONS)}. Received: act={act!r}")


def _numpy_eval(fn, x):
    return np.asarray(ops.convert_to_numpy(fn(ops.convert_to_tensor(x, dtype="float64"))), dtype=np.float64)


def _second_moment_constant(act):
    if isinstance(act, str):
        cst = _E3NN_CONSTANTS[act]
    else:
        z, w = np.polynomial.hermite_e.hermegauss(200)
        w = w / w.sum()
        cst = float(np.sum(w * _numpy_eval(act, z) ** 2)) ** -0.5
    return 1.0 if abs(cst - 1) < 1e-4 else cst


def normalize2mom(act):
    """``(fn, constant)``: ``constant * fn(z)`` has unit second moment for ``z ~ N(0, 1)``."""
    fn = get_activation(act)
    if fn is None:
        return None, 1.0
    return fn, _second_moment_constant(act if isinstance(act, str) else fn)


def activation_parity(act):
    """+1 if ``act`` is even, -1 if odd, 0 otherwise (checked on [0, 10] like e3nn)."""
    fn = get_activation(act)
    x = np.linspace(0.0, 10.0, 256)
    a1, a2 = _numpy_eval(fn, x), _numpy_eval(fn, -x)
    if np.abs(a1 - a2).max() < 1e-5:
        return 1
    if np.abs(a1 + a2).max() < 1e-5:
        return -1
    return 0
