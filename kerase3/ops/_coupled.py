"""The convolution tensor product with a hand-written gradient.

Covers plans whose every instruction is ``uvu`` with weights and a one-channel second
input (spherical harmonics of the edge vectors): the product of NequIP, MACE and of
``kerase3.layers.Convolution``. For one path

    M[z, i, k]   = pw * sum_j C[i, j, k] x2[z, j]            (one small matmul per path)
    out[z, u, k] = w[z, u] * sum_i x1[z, u, i] M[z, i, k]    (2l1+1 broadcast multiply-adds)

and, for an output cotangent ``g[z, u, k]``,

    h[z, u, i]   = sum_k g[z, u, k] M[z, i, k]
    dx1[z, u, i] = sum_paths w[z, u] h[z, u, i]
    dw[z, u]     = sum_i x1[z, u, i] h[z, u, i]
    dM[z, i, k]  = sum_u w[z, u] x1[z, u, i] g[z, u, k],     dx2 = sum_ik dM C^T.

Everything is written per irrep component: a component of a block in e3nn's mul_ir
layout is one strided slice ``[Z, mul]`` of the flat tensor, so XLA's fused loops index
it without reshapes (on this project's 2-core CPU a reshape inside a fused loop costs
about as much as the arithmetic). XLA's automatic gradient of the forward reads the
cotangent once per term; these sums read it twice and share ``h``. The gradient itself
has a gradient written the same way (the product is trilinear, see
`coupled_tensor_product`), so training on forces never falls back to XLA's automatic
differentiation of these sums (the speed-ups are measured in ``benchmarks/RESULTS.md``). First
and second derivatives equal automatic differentiation of the general code to 1e-10
(``tests/ops/test_coupled_gradient.py``; third derivatives were checked once the same way).
"""

import numpy as np
from keras import ops

from ..o3 import wigner_3j
from .layout import zeros_rows


def coupled_paths(plan):
    """Paths ``(ins, weight_slice)`` if every instruction is a weighted ``uvu`` with a
    one-channel second input, else None."""
    slices = dict((id(ins), s) for ins, s in plan.weight_slices())
    out = []
    for ins in plan.instructions:
        (m1, _), (m2, _), (mo, _) = plan.irreps_in1[ins.i_in1], plan.irreps_in2[ins.i_in2], plan.irreps_out[ins.i_out]
        if m1 == 0 or mo == 0 or ins.path_weight == 0:
            if ins.has_weight and int(np.prod(ins.path_shape)) > 0:
                return None  # its weights would need a zero gradient: leave it to the general code
            continue
        if ins.connection_mode != "uvu" or not ins.has_weight or m2 != 1:
            return None
        out.append((ins, slices[id(ins)]))
    return out or None


class CoupledTables:
    """Constant tables of a coupled plan, made once with the plan: one coupling matrix for all
    paths and the offsets."""

    def __init__(self, plan, paths):
        i1, i2, io = plan.irreps_in1, plan.irreps_in2, plan.irreps_out
        s1, s2, so = i1.slices(), i2.slices(), io.slices()
        cols, self.paths = [], []
        moff = 0
        for ins, ws in paths:
            (mul, ir1), (_, ir2), (_, iro) = i1[ins.i_in1], i2[ins.i_in2], io[ins.i_out]
            d1, d3 = ir1.dim, iro.dim
            C = np.zeros((i2.dim, d1, d3))
            C[s2[ins.i_in2]] = ins.path_weight * wigner_3j(ir1.l, ir2.l, iro.l).transpose(1, 0, 2)
            cols.append(C.reshape(i2.dim, d1 * d3))
            self.paths.append(dict(x=s1[ins.i_in1], b=ins.i_in1, o=ins.i_out, mul=mul, d1=d1, d3=d3,
                                   m=slice(moff, moff + d1 * d3), w=ws))
            moff += d1 * d3
        self.C = np.concatenate(cols, axis=1)  # [dim2, sum d1*d3]
        self.out_blocks = [(mul, ir.dim) for mul, ir in io]
        self.out_slices = so
        self.in_blocks = [(s, mul, ir.dim) for s, (mul, ir) in zip(s1, i1)]


def _strided_component(t, start, mul, dim, i):
    """Component ``i`` of a block ``[Z, mul*dim]`` starting at column ``start`` (mul_ir): ``[Z, mul]``
    as one strided slice, so fused loops index it without reshapes."""
    if dim == 1:
        return t[:, start : start + mul]
    return t[:, start + i : start + mul * dim : dim]


def _w_block(w, p, shared):
    return w[None, p["w"]] if shared else w[:, p["w"]]


def _stack(comps):
    """Components ``[Z, mul]`` -> ``[Z, mul, d]`` (mul_ir)."""
    return comps[0][:, :, None] if len(comps) == 1 else ops.stack(comps, axis=2)


def _assemble(blocks, shapes, like):
    """Blocks ``[Z, mul, d]`` (or None) -> ``[Z, sum mul*d]`` in the mul_ir layout."""
    parts = []
    for b, (mul, d) in zip(blocks, shapes):
        if mul == 0:
            continue
        if b is None:
            parts.append(zeros_rows(like, mul * d))
        else:
            parts.append(ops.reshape(b, (-1, mul * d)))
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)


def _add(acc, t):
    return t if acc is None else acc + t


def _forward(T, x1, x2, w, shared):
    outs = [None] * len(T.out_blocks)
    for p in T.paths:
        d1, d3, x0 = p["d1"], p["d3"], p["x"].start
        M = ops.matmul(x2, ops.convert_to_tensor(T.C[:, p["m"]], dtype=x2.dtype))  # [Z, d1*d3]
        xs = [_strided_component(x1, x0, p["mul"], d1, i) for i in range(d1)]
        wp = _w_block(w, p, shared)
        comps = []
        for k in range(d3):
            t = None
            for i in range(d1):
                t = _add(t, xs[i] * M[:, i * d3 + k, None])
            comps.append(t * wp)
        outs[p["o"]] = _add(outs[p["o"]], _stack(comps))
    return _assemble(outs, T.out_blocks, x1)


def _partials(T, g, x1, x2, w, shared):
    """The three partial derivatives of ``<g, TP(x1, x2, w)>``: ``(d/dx1, d/dx2, d/dw)``."""
    C = ops.convert_to_tensor(T.C, dtype=x2.dtype)
    M = ops.matmul(x2, C)
    dx = [None] * len(T.in_blocks)
    dw, dx2 = [], None
    for p in T.paths:
        d1, d3, m0, x0, mul, so = p["d1"], p["d3"], p["m"].start, p["x"].start, p["mul"], T.out_slices[p["o"]]
        xs = [_strided_component(x1, x0, mul, d1, i) for i in range(d1)]
        gs = [_strided_component(g, so.start, mul, d3, k) for k in range(d3)]
        wp = _w_block(w, p, shared)
        hs = []
        for i in range(d1):
            h = None
            for k in range(d3):
                h = _add(h, gs[k] * M[:, m0 + i * d3 + k, None])
            hs.append(h)
        dwp = None
        for i in range(d1):
            dwp = _add(dwp, xs[i] * hs[i])
        dw.append(ops.sum(dwp, axis=0) if shared else dwp)
        b = p["b"]
        dx[b] = [h * wp for h in hs] if dx[b] is None else [a + h * wp for a, h in zip(dx[b], hs)]
        xw = ops.reshape(x1[:, p["x"]], (-1, mul, d1)) * wp[:, :, None]
        g3 = ops.reshape(g[:, so], (-1, mul, d3))
        # dM stays [Z, d1, d3] and meets C one column k at a time: a fused loop whose result
        # is reshaped to [Z, d1*d3] (to concatenate the paths) indexes through the flattened
        # shape and ran 2-3x slower
        dM = ops.sum(xw[:, :, :, None] * g3[:, :, None, :], axis=1)
        Cp = T.C[:, p["m"]].reshape(-1, d1, d3)  # [dim2, d1, d3]
        for k in range(d3):
            dx2 = _add(dx2, ops.matmul(dM[:, :, k], ops.convert_to_tensor(Cp[:, :, k].T, dtype=x2.dtype)))
    dx1 = _assemble([None if c is None else _stack(c) for c in dx], [(mul, d) for _, mul, d in T.in_blocks], x1)
    dwc = dw[0] if len(dw) == 1 else ops.concatenate(dw, axis=-1)
    return dx1, dx2, dwc


def _cotangents(args, upstream, n):
    """The cotangents a ``custom_gradient`` function receives, as a list of ``n`` (TF passes
    them positionally, JAX as one tuple)."""
    if upstream is not None:
        args = (upstream,)
    if len(args) == 1 and n > 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return list(args)


def _sum(terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def coupled_tensor_product(T, x1, x2, w, shared_weights):
    """``[Z, dim1] x [Z, dim2]`` with weights ``[Z, numel]`` (or ``[numel]`` shared) -> ``[Z, dim_out]``.

    The product ``F`` is trilinear, so ``T = <g, F(x1, x2, w)>`` is linear in each of its four
    arguments and every derivative of every order is again ``F`` or one of ``T``'s partials at
    other arguments. Both carry a gradient written that way, so forces in a loss (second
    order) and beyond run the same hand-written sums instead of XLA's automatic gradient.

    Args:
        T: the plan's `CoupledTables` (``plan.coupled_tables``).
    """

    @ops.custom_gradient
    def product(x1, x2, w):
        def grad(*args, upstream=None):
            (g,) = _cotangents(args, upstream, 1)
            return partials(g, x1, x2, w)

        return _forward(T, x1, x2, w, shared_weights), grad

    @ops.custom_gradient
    def partials(g, x1, x2, w):
        def grad(*args, upstream=None):
            a1, a2, a3 = _cotangents(args, upstream, 3)
            # d/dg <a, partials> = F with one argument replaced by its cotangent; d/dx1 etc. are
            # partials with another argument replaced (T is linear in each argument)
            none = (None, None, None)
            dg = _sum([product(a1, x2, w) if a1 is not None else None,
                       product(x1, a2, w) if a2 is not None else None,
                       product(x1, x2, a3) if a3 is not None else None])
            pa = partials(g, x1, a2, w) if a2 is not None else none  # d/dx1 and d/dw through d/dx2
            pb = partials(g, x1, x2, a3) if a3 is not None else none  # d/dx1 and d/dx2 through d/dw
            pc = partials(g, a1, x2, w) if a1 is not None else none  # d/dx2 and d/dw through d/dx1
            return dg, _sum([pa[0], pb[0]]), _sum([pb[1], pc[1]]), _sum([pa[2], pc[2]])

        return _partials(T, g, x1, x2, w, shared_weights), grad

    return product(x1, x2, w)
