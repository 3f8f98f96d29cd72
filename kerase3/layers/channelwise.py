"""Every irrep type times every irrep type, channel by channel, as one dense bilinear map."""

import keras
import numpy as np
from keras import ops

from ..o3 import Irrep, Irreps, wigner_3j
from .base import IrrepsLayer


@keras.saving.register_keras_serializable(package="kerase3")
class ChannelwiseTensorProduct(IrrepsLayer):
    """Products of channel ``u`` of every irrep type of ``x1`` with channel ``u`` of every irrep type
    of ``x2`` (or with the one channel of ``x2``): the `TensorProduct` with one ``uuu`` (or ``uvu``)
    instruction without weights per pair of input blocks and output irrep, computed as one outer
    product and one matrix product instead of one operation per Clebsch-Gordan component (few
    operations to trace and compile).

    Same values as ``TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions)`` with
    e3nn's component normalisation (``instructions`` and ``irreps_out`` are attributes).

    Args:
        irreps_in1: irreps of ``x1``, every irrep at most once and all with the same
            multiplicity (``"8x0e + 8x1o + 8x2e"``).
        irreps_in2: irreps of ``x2``: every irrep at most once, all with ``irreps_in1``'s
            multiplicity or all with multiplicity 1 (e.g. spherical harmonics); default ``irreps_in1``.
        filter_ir_out: optional list of irreps to keep in the output.
        symmetric: `bool`; keep only the pairs ``(a, b)`` with ``a <= b`` (for a product of a
            feature with a second projection of itself, where ``(b, a)`` adds nothing new).

    Call arguments:
        x1: `(..., irreps_in1.dim)`, x2: `(..., irreps_in2.dim)`.

    Output shape:
        `(..., irreps_out.dim)`; ``irreps_out`` is one block per instruction, in order.

    Example:
        >>> tp = ChannelwiseTensorProduct("2x0e + 2x1o", filter_ir_out=["1o", "1e"])
        >>> str(tp.irreps_out), tp.instructions
        ('2x1o+2x1o+2x1e', [(0, 1, 0, 'uuu', False), (1, 0, 1, 'uuu', False), (1, 1, 2, 'uuu', False)])
    """

    _float_args = (0, 1)

    def __init__(self, irreps_in1, irreps_in2=None, filter_ir_out=None, symmetric=False, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.set_irreps(irreps_in1=irreps_in1, irreps_in2=irreps_in1 if irreps_in2 is None else irreps_in2)
        i1, i2 = self.irreps_in1, self.irreps_in2
        muls1, muls2 = {mul for mul, _ in i1}, {mul for mul, _ in i2}
        if len(muls1) != 1 or len({ir for _, ir in i1}) != len(i1) or len({ir for _, ir in i2}) != len(i2) \
                or len(muls2) != 1 or not muls2 <= muls1 | {1}:
            raise ValueError(f"{name}: irreps_in1 must hold every irrep once, all with one multiplicity, and irreps_in2 "
                             f"every irrep once with that multiplicity or 1. Received: irreps_in1={i1}, irreps_in2={i2}")
        try:
            self.filter_ir_out = None if filter_ir_out is None else [Irrep(ir) for ir in filter_ir_out]
        except ValueError:
            raise ValueError(f"{name}: filter_ir_out must be a list of irreps. Received: {filter_ir_out!r}") from None
        self.symmetric = bool(symmetric)
        if self.symmetric and i1 != i2:
            raise ValueError(f"{name}: symmetric=True needs irreps_in2 == irreps_in1. Received: {i1}, {i2}")
        mul = self.mul = muls1.pop()
        self.mul2 = muls2.pop()
        mode = "uuu" if self.mul2 == mul else "uvu"
        dims1, dims2 = [ir.dim for _, ir in i1], [ir.dim for _, ir in i2]
        st1, st2 = np.cumsum([0] + dims1), np.cumsum([0] + dims2)  # per-channel offsets of the types
        D1, D2 = int(st1[-1]), int(st2[-1])
        out, instr, blocks = [], [], []
        for a, (_, ir1) in enumerate(i1):
            for b, (_, ir2) in enumerate(i2):
                if self.symmetric and b < a:
                    continue
                for ir in ir1 * ir2:
                    if self.filter_ir_out is None or ir in self.filter_ir_out:
                        instr.append((a, b, len(out), mode, False))
                        out.append((mul, ir))
                        # e3nn, component normalisation, one path per output: sqrt(2 l3 + 1) C
                        c = np.sqrt(ir.dim) * wigner_3j(ir1.l, ir2.l, ir.l)
                        blocks.append((st1[a], st2[b], c))
        self.instructions = instr
        self.irreps_out = Irreps(out)
        K = sum(c.shape[2] for _, _, c in blocks)
        C = np.zeros((D1, D2, K))
        k = 0
        for a, b, c in blocks:
            C[a:a + c.shape[0], b:b + c.shape[1], k:k + c.shape[2]] = c
            k += c.shape[2]
        self._C = C.reshape(D1 * D2, K)
        # inputs: irreps layout -> (channel, type, m); outputs: (channel, instruction, m) -> irreps layout
        self._gather1, self._gather2 = self._channel_index(i1), self._channel_index(i2)
        kdims = [c.shape[2] for _, _, c in blocks]
        kstart = np.cumsum([0] + kdims)
        self._gather_out = np.array([u * K + kstart[i] + m for i, d in enumerate(kdims) for u in range(mul)
                                     for m in range(d)], np.int32)
        self._D1, self._D2, self._K = D1, D2, K

    @property
    def copy_index(self):
        """``(irreps_out.dim,)`` int32: the irrep copy (``0 .. irreps_out.num_irreps - 1``) of every
        output column, to weight each copy (``y * w[..., copy_index]``)."""
        return np.concatenate([np.repeat(np.arange(mul), ir.dim) + k * self.mul
                               for k, (mul, ir) in enumerate(self.irreps_out)]).astype(np.int32)

    @staticmethod
    def _channel_index(irreps):
        dims = [ir.dim for _, ir in irreps]
        start = np.cumsum([0] + [mul * ir.dim for mul, ir in irreps])
        mul = irreps[0].mul
        return np.array([start[t] + u * dims[t] + m for u in range(mul) for t in range(len(dims)) for m in range(dims[t])],
                        np.int32)

    def build(self, *args, **kwargs):
        self.built = True

    def call(self, x1, x2):
        self.check_input(x1, self.irreps_in1, "x1")
        self.check_input(x2, self.irreps_in2, "x2")
        lead = ops.shape(x1)[:-1]
        a = ops.reshape(ops.take(x1, ops.convert_to_tensor(self._gather1), axis=-1), (-1, self.mul, self._D1))
        b = ops.reshape(ops.take(x2, ops.convert_to_tensor(self._gather2), axis=-1), (-1, self.mul2, self._D2))
        outer = ops.reshape(a[:, :, :, None] * b[:, :, None, :], (-1, self.mul, self._D1 * self._D2))
        y = ops.matmul(outer, ops.convert_to_tensor(self._C, dtype=outer.dtype))  # (Z, mul, K)
        y = ops.take(ops.reshape(y, (-1, self.mul * self._K)), ops.convert_to_tensor(self._gather_out), axis=-1)
        return ops.reshape(y, tuple(lead) + (self.irreps_out.dim,))

    def compute_output_shape(self, x1_shape, x2_shape=None):
        return tuple(x1_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(filter_ir_out=None if self.filter_ir_out is None else [str(ir) for ir in self.filter_ir_out],
                      symmetric=self.symmetric)
        return config

    def __repr__(self):
        return f"ChannelwiseTensorProduct({self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out.simplify()})"
