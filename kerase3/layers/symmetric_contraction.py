"""MACE's equivariant product basis: a per-element polynomial of degree ``correlation`` in each
channel of the node features."""

import itertools

import keras
import numpy as np
from keras import ops

from ..o3 import Irreps, product_basis
from ..ops.layout import split_blocks
from .base import IrrepsLayer


def _symmetric_part_nonzero(u):
    """Whether ``sum U[m, i_1..i_nu, k] x_i1 ... x_inu`` is a nonzero polynomial for some ``k``: the
    part of ``U`` symmetric in its input indices is not zero."""
    if u is None:
        return False
    nu = u.ndim - 2
    sym = np.zeros_like(u)
    for perm in itertools.permutations(range(1, nu + 1)):
        sym += np.transpose(u, (0,) + perm + (nu + 1,))
    return bool(np.abs(sym).max() > 1e-9)


@keras.saving.register_keras_serializable(package="kerase3")
class SymmetricContraction(IrrepsLayer):
    r"""MACE's symmetric contraction (the "product basis", Batatia et al. 2022, eqs. 10-11).

    For every channel ``c`` and output irrep ``L``,

    .. math:: B_{c, L} = \sum_{\nu=1}^{\text{correlation}} \sum_k W^{\nu}_{z, k, c}
              \sum_{i_1..i_\nu} U^{\nu}_{L, i_1..i_\nu, k}\, x_{c, i_1} \cdots x_{c, i_\nu}

    with ``z`` the element of the node (one-hot ``node_attrs``; any weights over elements work),
    ``x_c`` the ``c``-th copy of every input irrep side by side and ``U`` the coupling tensors of
    `kerase3.o3.product_basis` (MACE's without cuEquivariance). Evaluated like MACE: the element's
    weights are contracted first, then one input index at a time (Horner's scheme), so the full
    ``nu``-fold product of the features is never formed. Equal to mace-torch's
    ``SymmetricContraction`` with the same weights (``tests/layers/test_symmetric_contraction.py``).

    Args:
        irreps_in: ``c x (ir_1 + ir_2 + ...)``, every irrep with the same multiplicity ``c``.
        irreps_out: irreps with multiplicity ``c`` each; every one must be reachable by a product of
            at most ``correlation`` inputs (else a ``ValueError`` names the unreachable ones).
        correlation: `int` >= 1, the largest degree (MACE's body order minus one).
        num_elements: `int`, number of elements (rows of ``node_attrs``).
        num_params: optional ``[[K per degree 1..correlation] per output irrep]``: the sizes of
            coupling tensors given from outside (`set_coupling`; e.g. mace-torch's reduced ones,
            ``kerase3.interop.mace.load``); 0 where a degree has none. Default: `product_basis`.
        convention: of the default coupling tensors: ``"mace"`` (mace-torch's, e3nn 0.4.4's Wigner
            signs) or ``"e3nn"`` (e3nn 0.6's); both are equivariant, they differ in the sign of
            some paths.

    Call arguments:
        x: `(N, irreps_in.dim)`.
        node_attrs: `(N, num_elements)`.

    Output shape:
        `(N, irreps_out.dim)`.

    Example:
        >>> sc = SymmetricContraction("4x0e + 4x1o", "4x0e + 4x1o", correlation=3, num_elements=2)
        >>> tuple(sc(np.ones((5, 16)), np.eye(2)[[0, 1, 1, 0, 0]]).shape)
        (5, 16)
    """

    def __init__(self, irreps_in, irreps_out, correlation, num_elements, num_params=None, convention="mace", **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_out=irreps_out)
        name = type(self).__name__
        muls = {mul for mul, _ in self.irreps_in}
        if len(muls) != 1 or 0 in muls:
            raise ValueError(f"{name}: every irrep of irreps_in needs the same non-zero multiplicity. Received: irreps_in={self.irreps_in}")
        self.mul = muls.pop()
        bad = [str(mi) for mi in self.irreps_out if mi.mul != self.mul]
        if bad:
            raise ValueError(f"{name}: every irrep of irreps_out needs multiplicity {self.mul} (that of irreps_in={self.irreps_in}). "
                             f"Received: {', '.join(bad)}")
        self.correlation, self.num_elements = int(correlation), int(num_elements)
        if self.correlation < 1 or self.num_elements < 1:
            raise ValueError(f"{name}: correlation and num_elements must be >= 1. Received: correlation={correlation}, "
                             f"num_elements={num_elements}")
        self.coupling_irreps = Irreps([(1, ir) for _, ir in self.irreps_in])
        self.convention = convention
        self._given = num_params is not None
        self._u = []  # per output irrep, per degree 1..correlation: np array [d_out, D^nu, K] or None
        if self._given:
            num_params = [[int(k) for k in row] for row in num_params]
            if len(num_params) != len(self.irreps_out) or any(len(r) != self.correlation for r in num_params):
                raise ValueError(f"{name}: num_params needs {len(self.irreps_out)} rows of {self.correlation}. Received: {num_params}")
            self.num_params = num_params
        else:
            self.num_params = []
            for _, ir in self.irreps_out:
                # MACE keeps only (l, (-1)^l) intermediates, l < 12, in its degree-4 tensors
                us = [product_basis(self.coupling_irreps, nu, ir, [(l, (-1) ** l) for l in range(12)] if nu == 4 else None,
                                    convention=self.convention)
                      for nu in range(1, self.correlation + 1)]
                self._u.append(us)
                self.num_params.append([0 if u is None else u.shape[-1] for u in us])
        # (coupling tensors given from outside may leave an output empty: mace-torch's models do, with
        # odd scalars in the hidden irreps of the first layer; that output is then zero, as there)
        unreachable = [] if self._given else [str(ir) for i, (_, ir) in enumerate(self.irreps_out)
                                              if not any(_symmetric_part_nonzero(u) for u in self._u[i])]
        if unreachable:
            # a path can be nonzero and still vanish on x (x) x (x) ... (x) x: 1o x 1o -> 1e is a x a = 0
            raise ValueError(f"{name}: no product of at most {self.correlation} copies of {self.coupling_irreps} reaches "
                             f"{', '.join(unreachable)} (irreps_out={self.irreps_out}). Remove them or raise the correlation.")

    def build(self, *args, **kwargs):
        d = self.coupling_irreps.dim
        self.weights_nu, self.u_matrices = [], []
        for i, (_, ir) in enumerate(self.irreps_out):
            ws, us = [], []
            for nu, k in enumerate(self.num_params[i], start=1):
                if k == 0:
                    ws.append(None)
                    us.append(None)
                    continue
                ws.append(self.add_weight(name=f"weights_{i}_{nu}", shape=(self.num_elements, k, self.mul),
                                          initializer=keras.initializers.RandomNormal(stddev=1.0 / k)))
                init = "zeros" if self._given else keras.initializers.Constant(self._u[i][nu - 1])
                us.append(self.add_weight(name=f"U_{i}_{nu}", shape=(ir.dim,) + (d,) * nu + (k,), initializer=init,
                                          trainable=False))
            self.weights_nu.append(ws)
            self.u_matrices.append(us)
        self.built = True

    def set_coupling(self, i, nu, u):
        """Set the coupling tensor of output irrep ``i`` and degree ``nu`` (any array of
        ``ir.dim * D^nu * K`` values, e.g. mace-torch's ``U_matrix_nu`` whose scalar outputs lack
        the leading axis)."""
        var = self.u_matrices[i][nu - 1]
        if var is None:
            if np.any(np.asarray(u) != 0):
                raise ValueError(f"SymmetricContraction.set_coupling: output {i} has no degree-{nu} term here but the "
                                 f"given tensor is not zero (shape {np.shape(u)})")
            return
        u = np.asarray(u)
        if u.size != int(np.prod(var.shape)):
            raise ValueError(f"SymmetricContraction.set_coupling: output {i}, degree {nu} needs {tuple(var.shape)}. "
                             f"Received: shape {u.shape}")
        var.assign(u.reshape(var.shape).astype(var.dtype))

    def call(self, x, node_attrs):
        self.check_input(x, self.irreps_in, "x")
        x = ops.cast(x, self.compute_dtype)
        attrs = ops.cast(node_attrs, self.compute_dtype)
        c, d = self.mul, self.coupling_irreps.dim
        # [N, c, D]: the c-th copy of every irrep side by side (MACE's layout)
        xs = [ops.reshape(b, (-1, c, ir.dim)) for b, (_, ir) in zip(split_blocks(x, self.irreps_in), self.irreps_in)]
        xs = xs[0] if len(xs) == 1 else ops.concatenate(xs, axis=-1)
        outs = []
        for i, (_, ir) in enumerate(self.irreps_out):
            acc = None
            for nu in range(self.correlation, 0, -1):
                w, u = self.weights_nu[i][nu - 1], self.u_matrices[i][nu - 1]
                if w is not None:
                    k = self.num_params[i][nu - 1]
                    # the node's weights [N, c, K] (its element's row)
                    wn = ops.matmul(attrs, ops.reshape(ops.cast(w, x.dtype), (self.num_elements, k * c)))
                    wn = ops.transpose(ops.reshape(wn, (-1, k, c)), (0, 2, 1))
                    m = ir.dim * d ** (nu - 1)
                    u = ops.cast(u, x.dtype)
                    if acc is None:
                        # sum_{i,k} U[m, i, k] x[n, c, i] w[n, c, k]: one product with the outer x (x) w
                        t = ops.reshape(xs[:, :, :, None] * wn[:, :, None, :], (-1, d * k))
                        acc = ops.reshape(ops.matmul(t, ops.transpose(ops.reshape(u, (m, d * k)))), (-1, c, m))
                        continue
                    acc = acc + ops.reshape(ops.matmul(ops.reshape(wn, (-1, k)), ops.transpose(ops.reshape(u, (m * d, k)))), (-1, c, m * d))
                if acc is not None:
                    # contract the last input index: [N, c, m, D] . x -> [N, c, m]
                    acc = ops.sum(ops.reshape(acc, (-1, c, acc.shape[-1] // d, d)) * xs[:, :, None, :], axis=-1)
            outs.append(ops.zeros_like(x[:, :1]) * ops.zeros((1, c * ir.dim), x.dtype) if acc is None
                        else ops.reshape(acc, (-1, c * ir.dim)))
        return outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=-1)

    def compute_output_shape(self, x_shape, *args, **kwargs):
        return tuple(x_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(correlation=self.correlation, num_elements=self.num_elements,
                      num_params=self.num_params if self._given else None, convention=self.convention)
        return config

    def __repr__(self):
        return f"SymmetricContraction({self.irreps_in} -> {self.irreps_out}, correlation={self.correlation})"
