import keras
import numpy as np
from keras import ops

from ..o3 import Irreps
from ..ops.activations import activation_parity, get_activation
from ..ops.s2grid import s2_grid_matrices
from .base import IrrepsLayer, irreps_arg


@keras.saving.register_keras_serializable(package="kerase3")
class S2Activation(IrrepsLayer):
    """A pointwise nonlinearity on the sphere: coefficients -> grid values -> ``act`` -> coefficients.

    The input is a spherical signal ``1x0 + 1x1 + ... + 1xlmax`` with parities
    ``p_val * p_arg**l`` (see `kerase3.io.SphericalTensor`). ``act`` of a band-limited signal is
    not band-limited, so the result (projected back to ``lmax_out``) is equivariant up to the
    aliasing of the grid: the error falls as ``res_beta`` grows (measured in the tests).

    Args:
        irreps_in: the input signal's irreps (``"0e + 1o + 2e"``; one copy of each l from 0).
        act: activation name or callable.
        res_beta, res_alpha: grid resolution (default: ``2 (lmax + 1)`` and ``2 res_beta``; the
            projections are exact for band-limited signals from ``lmax + 1`` and ``2 lmax + 1``).
        lmax_out: band limit of the output (default: the input's).

    Parity: ``act`` even -> output ``p_val = +1``; odd -> ``p_val`` kept; neither -> the input
    must have ``p_val = +1``. ``p_arg`` is kept.

    Example:
        >>> act = S2Activation("0e + 1o + 2e", "silu")
        >>> str(act.irreps_out), tuple(act(np.ones((2, 9))).shape)
        ('1x0e+1x1o+1x2e', (2, 9))
    """

    def __init__(self, irreps_in, act, res_beta=None, res_alpha=None, lmax_out=None, **kwargs):
        super().__init__(**kwargs)
        irreps = irreps_arg(irreps_in, "S2Activation", "irreps_in")
        ls = [ir.l for _, ir in irreps]
        if any(m != 1 for m, _ in irreps) or ls != list(range(len(ls))):
            raise ValueError(f"S2Activation: irreps_in must be 1x0 + 1x1 + ... + 1xlmax. Received: irreps_in={irreps}")
        p_val = irreps[0].ir.p
        p_arg = 1 if len(irreps) == 1 else irreps[1].ir.p * p_val
        if any(ir.p != p_val * p_arg**ir.l for _, ir in irreps):
            raise ValueError(f"S2Activation: the parities of {irreps} are not p_val * p_arg**l")
        parity = activation_parity(act)
        if parity == 1:
            p_out = 1
        elif parity == -1:
            p_out = p_val
        elif p_val == 1:
            p_out = 1
        else:
            raise ValueError(f"S2Activation: activation {act!r} is neither even nor odd, so the input must have "
                             f"p_val=+1 (scalar-like signals). Received: irreps_in={irreps}")
        self.set_irreps(irreps_in=irreps)
        self.act = act
        self._fn = get_activation(act)
        lmax = len(ls) - 1
        self.lmax_out = lmax if lmax_out is None else int(lmax_out)
        self.res_beta = int(res_beta or 2 * (max(lmax, self.lmax_out) + 1))
        self.res_alpha = int(res_alpha or 2 * self.res_beta)
        self.irreps_out = Irreps([(1, (l, p_out * p_arg**l)) for l in range(self.lmax_out + 1)])
        Y_in, _ = s2_grid_matrices(str(irreps), self.res_beta, self.res_alpha)
        _, WY_out = s2_grid_matrices(str(self.irreps_out), self.res_beta, self.res_alpha)
        self._to, self._from = np.ascontiguousarray(Y_in.T), WY_out

    def call(self, x):
        self.check_input(x, self.irreps_in)
        values = ops.matmul(x, ops.convert_to_tensor(self._to, dtype=x.dtype))
        return ops.matmul(self._fn(values), ops.convert_to_tensor(self._from, dtype=x.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(act=self.act, res_beta=self.res_beta, res_alpha=self.res_alpha,
                      lmax_out=self.lmax_out)
        return config

    def __repr__(self):
        return f"S2Activation({self.irreps_in} -> {self.irreps_out}, act={self.act!r}, grid {self.res_beta}x{self.res_alpha})"
