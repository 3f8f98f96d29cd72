"""MACE's equivariant product basis: a per-element polynomial of degree ``correlation`` in each
channel of the node features."""

import functools
import itertools
import math

import keras
import numpy as np
from keras import ops

from ..o3 import Irreps, product_basis
from ..ops.layout import split_blocks
from .base import IrrepsLayer


def _symmetrized(u):
    """``U`` averaged over the orders of its input indices (the same polynomial of ``x``)."""
    nu = u.ndim - 2
    out = np.zeros_like(u)
    for perm in itertools.permutations(range(1, nu + 1)):
        out += np.transpose(u, (0,) + perm + (nu + 1,))
    return out / math.factorial(nu)


@functools.lru_cache(maxsize=None)
def _reduced(irreps, nu, ir_out):
    """An orthonormal basis ``B [ir.dim, D, .., D, r]`` (symmetric in its input indices) of every
    equivariant homogeneous polynomial of degree ``nu`` of ``x in irreps`` with values in ``ir_out``:
    Gram-Schmidt over the symmetrized coupling paths of `kerase3.o3.product_basis`, in their
    order (deterministic: no sign left to a linear-algebra library). None if there is none."""
    u = product_basis(irreps, nu, ir_out)
    if u is None:
        return None
    sym = _symmetrized(u)
    cols = sym.reshape(-1, sym.shape[-1]).T
    scale = np.abs(cols).max()
    basis = []
    for v in cols:
        for _ in range(2):
            for b in basis:
                v = v - (b @ v) * b
        n = np.linalg.norm(v)
        if n > 1e-8 * max(scale, 1.0):
            basis.append(v / n)
    if not basis:
        return None
    out = np.stack(basis, axis=-1).reshape(sym.shape[:-1] + (len(basis),))
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def _monomials(d, nu):
    """Sorted index tuples ``i_1 <= .. <= i_nu`` of the degree-``nu`` monomials of ``d`` variables
    and their multiplicities ``nu! / prod(counts!)``."""
    tuples = list(itertools.combinations_with_replacement(range(d), nu))
    mult = np.array([math.factorial(nu) / np.prod([math.factorial(t.count(i)) for i in set(t)]) for t in tuples])
    return tuples, mult


@keras.saving.register_keras_serializable(package="kerase3")
class SymmetricContraction(IrrepsLayer):
    r"""MACE's symmetric contraction (the "product basis", Batatia et al. 2022, eqs. 10-11).

    For every channel ``c`` and output irrep ``L``,

    .. math:: B_{c, L} = \sum_{\nu=1}^{\text{correlation}} \sum_r W^{\nu}_{z, r, c}\, P^{\nu}_{L, r}(x_c)

    with ``z`` the element of the node (one-hot ``node_attrs``; any weights over elements work),
    ``x_c`` the ``c``-th copy of every input irrep side by side and ``P^nu_r`` an orthonormal basis
    of all equivariant polynomials of degree ``nu`` (Gram-Schmidt over the symmetrized coupling
    tensors of `kerase3.o3.product_basis`). MACE's ``U`` tensors hold the same polynomials in a
    redundant basis (K paths, e.g. 51 for 1o at degree 3 from 0e+1o+2e+3o, where 12 are
    independent): mace-torch weights map to these by a fixed linear map (`express_in_basis`;
    `kerase3.interop.mace.load` applies it) and then give mace-torch's numbers
    (``tests/layers/test_symmetric_contraction.py``). The polynomials are evaluated on the
    distinct monomials of the degree below (136 at degree 2 in 16 variables): degree ``nu`` is
    ``sum_k x_k (m_{nu-1} @ T_k)``, one matrix product per degree and no ``nu``-fold product or
    feature table ever formed; the element's weights are applied last, per channel.

    Args:
        irreps_in: ``c x (ir_1 + ir_2 + ...)``, every irrep with the same multiplicity ``c``.
        irreps_out: irreps with multiplicity ``c`` each; every one must be reachable by a symmetric
            product of at most ``correlation`` inputs (else a ``ValueError`` names the unreachable
            ones: ``1o x 1o -> 1e`` is ``a x a = 0`` in every channel).
        correlation: `int` >= 1, the largest degree (MACE's body order minus one).
        num_elements: `int`, number of elements (rows of ``node_attrs``).
        allow_empty: `bool`; if True, unreachable outputs are zeros instead of an error (mace-torch's
            behaviour, e.g. odd scalars in the first layer of a MACE).

    Call arguments:
        x: `(N, irreps_in.dim)`.
        node_attrs: `(N, num_elements)`.

    Output shape:
        `(N, irreps_out.dim)`.

    Example:
        >>> sc = SymmetricContraction("4x0e + 4x1o", "4x0e + 4x1o", correlation=3, num_elements=2)
        >>> tuple(sc(np.ones((5, 16)), np.eye(2)[[0, 1, 1, 0, 0]]).shape)
        (5, 16)
        >>> sc.num_params  # independent polynomials per output irrep and degree
        [[1, 2, 2], [1, 1, 2]]
    """

    _float_args = (0, 1)

    def __init__(self, irreps_in, irreps_out, correlation, num_elements, allow_empty=False, **kwargs):
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
        self.allow_empty = bool(allow_empty)
        self.coupling_irreps = Irreps([(1, ir) for _, ir in self.irreps_in])
        key = str(self.coupling_irreps)
        self._basis = [[_reduced(key, nu, str(ir)) for nu in range(1, self.correlation + 1)] for _, ir in self.irreps_out]
        self.num_params = [[0 if b is None else b.shape[-1] for b in row] for row in self._basis]
        unreachable = [str(ir) for (_, ir), row in zip(self.irreps_out, self.num_params) if not any(row)]
        if unreachable and not self.allow_empty:
            raise ValueError(f"{name}: no symmetric product of at most {self.correlation} copies of {self.coupling_irreps} "
                             f"reaches {', '.join(unreachable)} (irreps_out={self.irreps_out}). Remove them or raise the correlation.")
        # per degree nu: features (distinct monomials of degree nu - 1) x (every variable), and the
        # coefficients of every output's basis on them, side by side [n_{nu-1} D, sum d_out r]
        d = self.coupling_irreps.dim
        self._tables = []
        for nu in range(1, self.correlation + 1):
            prev, mult = _monomials(d, nu - 1) if nu > 1 else ([()], np.ones(1))
            rows = [t + (k,) for t in prev for k in range(d)]
            flat = np.ravel_multi_index(np.array(rows).T, (d,) * nu)
            weight = np.repeat(mult, d)
            cols, places, off = [], [], 0
            for i, (_, ir) in enumerate(self.irreps_out):
                b = self._basis[i][nu - 1]
                if b is None:
                    continue
                r = b.shape[-1]
                coef = b.reshape(ir.dim, d**nu, r)[:, flat, :] * weight[None, :, None]  # [d_out, rows, r]
                cols.append(coef.transpose(1, 0, 2).reshape(len(rows), ir.dim * r))
                places.append((i, off, ir.dim, r))
                off += ir.dim * r
            table = np.concatenate(cols, axis=1) if cols else None
            # the distinct monomials of degree nu among these features (inputs of degree nu + 1)
            index = {t: j for j, t in enumerate(prev)}
            nxt = list(itertools.combinations_with_replacement(range(d), nu))
            self._tables.append(dict(table=table, places=places, head=np.array([index[t[:-1]] for t in nxt], np.int32),
                                     last=np.array([t[-1] for t in nxt], np.int32)))

    def build(self, *args, **kwargs):
        self.weights_nu = []
        for i in range(len(self.irreps_out)):
            ws = []
            for nu, r in enumerate(self.num_params[i], start=1):
                ws.append(None if r == 0 else self.add_weight(
                    name=f"weights_{i}_{nu}", shape=(self.num_elements, r, self.mul),
                    initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(r))))
            self.weights_nu.append(ws)
        self.built = True

    def express_in_basis(self, i, nu, u):
        """A coupling tensor ``u`` of degree-``nu`` polynomials of output ``i`` (any shape holding
        ``ir.dim * D**nu * K`` values: the output component, ``nu`` input axes of size
        ``D = coupling_irreps.dim``, then ``K`` polynomials) in this layer's basis: ``p [r, K]`` with
        the same polynomials as ``basis @ p`` (``u`` is symmetrised over its input axes first, as the
        product of the inputs is), so weights ``w [E, K, c]`` on ``u``'s polynomials are
        ``einsum("rk,ekc->erc", p, w)`` here. None where this layer has no such polynomial and ``u``
        none either; a ``ValueError`` when ``u`` holds a polynomial outside this layer's span."""
        ir = self.irreps_out[i].ir
        d = self.coupling_irreps.dim
        u = np.asarray(u)
        eps = np.finfo(u.dtype).eps if u.dtype.kind == "f" else np.finfo(np.float64).eps
        u = u.astype(np.float64)
        k = u.size // (ir.dim * d**nu)
        u = _symmetrized(u.reshape((ir.dim,) + (d,) * nu + (k,))).reshape(-1, k)
        b = self._basis[i][nu - 1]
        if b is None:
            if np.abs(u).max() > 1e-9:
                raise ValueError(f"SymmetricContraction.express_in_basis: output {ir}, degree {nu} has no polynomial here "
                                 f"but the given coupling tensor has one")
            return None
        b = b.reshape(-1, b.shape[-1])
        p = b.T @ u  # [r, K]
        resid = np.abs(u - b @ p).max()
        if resid > max(1e-8, 1e3 * eps) * max(1.0, np.abs(u).max()):  # float32 tensors: their rounding
            raise ValueError(f"SymmetricContraction.express_in_basis: output {ir}, degree {nu}: the given coupling tensor "
                             f"is not in this layer's span (residual {resid:.1e})")
        return p

    def call(self, x, node_attrs):
        self.check_input(x, self.irreps_in, "x")
        x = ops.cast(x, self.compute_dtype)
        attrs = ops.cast(node_attrs, self.compute_dtype)
        c, d = self.mul, self.coupling_irreps.dim
        # [N, c, D]: the c-th copy of every irrep side by side (MACE's layout)
        xs = [ops.reshape(b, (-1, c, ir.dim)) for b, (_, ir) in zip(split_blocks(x, self.irreps_in), self.irreps_in)]
        xs = xs[0] if len(xs) == 1 else ops.concatenate(xs, axis=-1)
        flat = ops.reshape(xs, (-1, d))  # [N c, D]
        # the element's weights of every (output, degree), one product: [N, R, c]
        ws = [(i, nu, w) for i, row in enumerate(self.weights_nu) for nu, w in enumerate(row, start=1) if w is not None]
        if not ws:  # allow_empty and nothing reachable
            return ops.zeros_like(x[:, :1]) * ops.zeros((1, self.irreps_out.dim), x.dtype)
        sizes = [self.num_params[i][nu - 1] for i, nu, _ in ws]
        w_all = ops.concatenate([ops.reshape(ops.cast(w, x.dtype), (self.num_elements, -1)) for _, _, w in ws], axis=1) \
            if len(ws) > 1 else ops.reshape(ops.cast(ws[0][2], x.dtype), (self.num_elements, -1))
        wn = ops.reshape(ops.matmul(attrs, w_all), (-1, sum(sizes), c))
        wn = ops.transpose(wn, (0, 2, 1))  # [N, c, R]
        starts = dict(((i, nu), s) for (i, nu, _), s in zip(ws, np.cumsum([0] + sizes[:-1])))
        acc = [None] * len(self.irreps_out)
        mono = None  # distinct monomials of the previous degree [N c, n]
        for nu, tab in enumerate(self._tables, start=1):
            if tab["table"] is not None:
                cols = tab["table"].shape[1]
                if nu == 1:
                    q = ops.matmul(flat, ops.convert_to_tensor(tab["table"], dtype=x.dtype))
                else:
                    # sum_k x_k (mono @ T_k): the features mono (x) x are never materialised
                    t = ops.convert_to_tensor(tab["table"].reshape(-1, d * cols), dtype=x.dtype)
                    g = ops.reshape(ops.matmul(mono, t), (-1, d, cols))
                    q = ops.sum(g * flat[:, :, None], axis=1)
                q = ops.reshape(q, (-1, c, cols))
                for i, off, dim, r in tab["places"]:
                    s = int(starts[(i, nu)])
                    t = ops.sum(ops.reshape(q[:, :, off : off + dim * r], (-1, c, dim, r)) * wn[:, :, None, s : s + r], axis=-1)
                    acc[i] = t if acc[i] is None else acc[i] + t
            if nu < self.correlation:
                mono = flat if nu == 1 else ops.take(mono, ops.convert_to_tensor(tab["head"]), axis=1) * \
                    ops.take(flat, ops.convert_to_tensor(tab["last"]), axis=1)
        outs = []
        for t, (_, ir) in zip(acc, self.irreps_out):
            outs.append(ops.zeros_like(x[:, :1]) * ops.zeros((1, c * ir.dim), x.dtype) if t is None
                        else ops.reshape(t, (-1, c * ir.dim)))
        return outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=-1)

    def compute_output_shape(self, x_shape, *args, **kwargs):
        return tuple(x_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(correlation=self.correlation, num_elements=self.num_elements, allow_empty=self.allow_empty)
        return config

    def __repr__(self):
        return f"SymmetricContraction({self.irreps_in} -> {self.irreps_out}, correlation={self.correlation})"
