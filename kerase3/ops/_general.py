"""The general tensor-product kernel: every connection mode, shared or per-sample weights.

Inputs are read per component ``[Z, mul]`` straight from e3nn's mul_ir layout. When one side
of a path has a single channel (spherical harmonics, gates), the Clebsch-Gordan tensor is
contracted with it first into a coupling matrix ``M[z, i, k]`` and applied as ``2l+1``
broadcast multiply-adds over the channels; otherwise the sum is unrolled over the non-zeros of
``wigner_3j``. Neither becomes a small per-sample matrix product. Channel mixing with shared
weights is a few large matrix products: paths mixed on the input side are grouped by input
block, those mixed on the output side by output block; each path is mixed on its cheaper side.
Output blocks are assembled in the mul_ir layout.

One function per family of connection modes (`_KERNELS`) adds each path's contribution to an
`_Outputs` accumulator, which assembles the output once all paths are in.
"""

import functools

import numpy as np
from keras import ops

from .. import backend
from ..o3 import wigner_3j
from .layout import split_blocks, zeros_rows
from .plan import cg_terms


@functools.lru_cache(maxsize=None)
def _terms_by_k(l1, l2, l3):
    """For each output component k: ((i, ((j, c), ...)), ...), grouped by i."""
    out = []
    for k in range(2 * l3 + 1):
        by_i = {}
        for i, j, kk, c in cg_terms(l1, l2, l3):
            if kk == k:
                by_i.setdefault(i, []).append((j, c))
        out.append(tuple((i, tuple(jc)) for i, jc in sorted(by_i.items())))
    return tuple(out)


def _cg(l1, l2, l3, scale, left, right, combine):
    """``out_k = sum_ij scale * C_ijk combine(left(i), right(j))``, list over k (bilinear combine)."""
    outs = []
    for groups in _terms_by_k(l1, l2, l3):
        acc = None
        for i, jc in groups:
            r = None
            for j, c in jc:
                t = (scale * c) * right(j)
                r = t if r is None else r + t
            term = combine(left(i), r)
            acc = term if acc is None else acc + term
        outs.append(acc)
    return outs


def _outer(a, b):  # [Z, u], [Z, v] -> [Z, u, v]
    return a[:, :, None] * b[:, None, :]


def _mul(a, b):
    return a * b


def _components(t):
    """Cached component accessor of an ir_mul tensor ``[Z, d, mul]``: ``i -> [Z, mul]``."""
    cache = {}

    def get(i):
        if i not in cache:
            cache[i] = t[:, i, :]
        return cache[i]

    return get


def _scaled_components(block, wk, shared):
    """Components of a one-channel `_Block` times per-channel weights ``wk [(Z,) m]``: ``[Z, m]`` each."""
    cache = {}
    scale = wk[None, :] if shared else wk

    def get(j):
        if j not in cache:
            cache[j] = block.comp(j) * scale
        return cache[j]

    return get


class _Block:
    """One input block, viewed lazily as components ``[Z, mul]`` (read straight from the
    mul_ir layout, no transpose) or as an ir_mul tensor ``[Z, 2l+1, mul]`` (for matrix products)."""

    def __init__(self, x2d, mul, dim):
        self.mul, self.dim = mul, dim
        self.mul_ir = ops.reshape(x2d, (-1, mul, dim))
        self._ir_mul = None
        self._comps = {}

    @property
    def ir_mul(self):
        if self._ir_mul is None:
            self._ir_mul = ops.transpose(self.mul_ir, (0, 2, 1))
        return self._ir_mul

    def comp(self, i):
        if i not in self._comps:
            self._comps[i] = self.mul_ir[:, :, i] if self.dim > 1 else self.mul_ir[:, :, 0]
        return self._comps[i]


def _blocks(x2d, irreps):
    return [None if mul == 0 else _Block(b, mul, ir.dim) for b, (mul, ir) in zip(split_blocks(x2d, irreps), irreps)]


def _coupling(block, l1, l2, l3, pw, keep):
    """The Clebsch-Gordan tensor contracted with a one-channel block: ``keep=1`` (``block`` is x2)
    gives ``M[z, i, k] = pw sum_j C_ijk x2[z, j]`` ``[Z, d1, d3]``; ``keep=2`` (``block`` is x1) gives
    ``M[z, j, k] = pw sum_i C_ijk x1[z, i]`` ``[Z, d2, d3]``."""
    C = pw * wigner_3j(l1, l2, l3)
    if keep == 1:
        C = C.transpose(1, 0, 2)
    d_in, d_keep = C.shape[0], C.shape[1]
    x = ops.reshape(block.mul_ir, (-1, d_in))
    M = ops.matmul(x, ops.convert_to_tensor(C.reshape(d_in, -1), dtype=x.dtype))
    return ops.reshape(M, (-1, d_keep, 2 * l3 + 1))


def _apply_coupling(get_i, M, d1):
    """``out[z, u, k] = sum_i a_i[z, u] M[z, i, k]`` as d1 broadcast multiply-adds (never a small
    per-sample matrix product): ``[Z, u, d3]``."""
    out = None
    for i in range(d1):
        t = get_i(i)[:, :, None] * M[:, None, i, :]
        out = t if out is None else out + t
    return out


class _Outputs:
    """Contributions to every output block, assembled in the mul_ir layout at the end.

    A contribution is a list of components ``[Z, mul]`` over k (`add_components`), a tensor already
    ``[Z, mul, d3]`` (`add`), or a shared-weight
    channel mixing deferred so that paths share one matrix product (`mix_output_side`,
    `mix_input_side`).
    """

    def __init__(self, plan, A1):
        self.plan, self.A1 = plan, A1
        n = len(plan.irreps_out)
        self.comps = [None] * n
        self.tensors = [[] for _ in range(n)]
        self.out_gemm = [[] for _ in range(n)]  # (t [Z, K, d3], W [K, w]) per output block
        self.in_gemm = {}  # i_in1 -> [(W [u, w], i_out, M)]

    def add_components(self, i_out, comps):
        old = self.comps[i_out]
        self.comps[i_out] = comps if old is None else [a + b for a, b in zip(old, comps)]

    def add(self, i_out, t):
        self.tensors[i_out].append(t)

    def mix_output_side(self, i_out, t, W):
        self.out_gemm[i_out].append((t, W))

    def mix_input_side(self, i_in1, W, i_out, M):
        self.in_gemm.setdefault(i_in1, []).append((W, i_out, M))

    def assemble(self, like):
        plan = self.plan
        # shared-weight paths mixed on the input side: one matrix product per input block
        for i_in1, items in self.in_gemm.items():
            a1 = self.A1[i_in1].ir_mul
            d1, u = plan.irreps_in1[i_in1].ir.dim, plan.irreps_in1[i_in1].mul
            W = items[0][0] if len(items) == 1 else ops.concatenate([it[0] for it in items], axis=1)
            Y = ops.reshape(ops.matmul(ops.reshape(a1, (-1, u)), W), (-1, d1, W.shape[1]))
            start = 0
            for Wp, i_out, M in items:
                n = Wp.shape[1]
                self.add(i_out, _apply_coupling(lambda i, s0=start, n=n: Y[:, i, s0 : s0 + n], M, d1))
                start += n
        # shared-weight paths mixed on the output side: one matrix product per output block
        for i_out, items in enumerate(self.out_gemm):
            if items:
                T = items[0][0] if len(items) == 1 else ops.concatenate([t for t, _ in items], axis=1)  # [Z, K, d3]
                W = items[0][1] if len(items) == 1 else ops.concatenate([w for _, w in items], axis=0)  # [K, w]
                self.add(i_out, backend.einsum("zqk,qw->zwk", T, W))
        # component lists are stacked on the last axis (no transpose)
        parts = []
        for i_out, (mul, ir) in enumerate(plan.irreps_out):
            if mul == 0:
                continue
            comps = self.comps[i_out]
            acc = None
            if comps is not None:
                acc = ops.stack(comps, axis=2) if ir.dim > 1 else comps[0][:, :, None]
            for t in self.tensors[i_out]:
                acc = t if acc is None else acc + t
            parts.append(zeros_rows(like, mul * ir.dim) if acc is None else ops.reshape(acc, (-1, mul * ir.dim)))
        if not parts:
            return ops.zeros_like(like[:, :0])
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)


class _Path:
    """What a kernel needs of one instruction: its blocks, degrees, weights and normalisation."""

    def __init__(self, plan, ins, A1, A2, w, shared):
        self.ins, self.shared, self.w = ins, shared, w
        (self.m1, ir1), (self.m2, ir2), (self.mo, iro) = (
            plan.irreps_in1[ins.i_in1], plan.irreps_in2[ins.i_in2], plan.irreps_out[ins.i_out])
        self.B1, self.B2 = A1[ins.i_in1], A2[ins.i_in2]
        self.l1, self.l2, self.l3 = ir1.l, ir2.l, iro.l
        self.d1, self.d2, self.d3 = ir1.dim, ir2.dim, iro.dim
        self.pw = ins.path_weight

    def cg(self, left, right, combine):
        return _cg(self.l1, self.l2, self.l3, self.pw, left, right, combine)


def _uvw(p, out):
    """Fully connected channels ``u, v -> w``; a one-channel x2 goes through the coupling matrix."""
    ins, w, shared = p.ins, p.w, p.shared
    if p.l2 == 0:
        # x2 scalars (e.g. one-hot species): C_i0k = delta_ik / sqrt(2l+1), so the path is a linear
        # map of the outer product x1 (x) x2 - one broadcast multiply, then one matrix product
        u, v, wo = ins.path_shape
        c = p.pw * float(wigner_3j(p.l1, 0, p.l3)[0, 0, 0])
        t = p.B1.mul_ir[:, :, None, :] * (c * p.B2.mul_ir[:, None, :, :])  # [Z, u, v, d]
        t = ops.reshape(t, (-1, u * v, p.d3))
        if shared:
            out.mix_output_side(ins.i_out, t, ops.reshape(w, (u * v, wo)))
        else:
            out.add(ins.i_out, backend.einsum("zqk,zqw->zwk", t, ops.reshape(w, (-1, u * v, wo))))
        return
    if ins.path_shape[1] == 1:
        # x2 has one channel: couple through M[z, i, k] and mix channels on the cheaper side
        u, _, wo = ins.path_shape
        M = _coupling(p.B2, p.l1, p.l2, p.l3, p.pw, keep=1)
        Wm = ops.reshape(w, (u, wo)) if shared else ops.reshape(w, (-1, u, wo))
        if p.d1 < p.d3:
            if shared:
                out.mix_input_side(ins.i_in1, Wm, ins.i_out, M)
            else:
                y = backend.einsum("ziu,zuw->ziw", p.B1.ir_mul, Wm)
                out.add(ins.i_out, _apply_coupling(lambda i, y=y: y[:, i, :], M, p.d1))
        else:
            t = _apply_coupling(p.B1.comp, M, p.d1)  # [Z, u, d3]
            if shared:
                out.mix_output_side(ins.i_out, t, Wm)
            else:
                out.add(ins.i_out, backend.einsum("zuk,zuw->zwk", t, Wm))
        return
    u, v, wo = ins.path_shape
    nnz = len(cg_terms(p.l1, p.l2, p.l3))
    cost_in = p.d1 * u * v * wo + nnz * v * wo
    cost_out = nnz * u * v + p.d3 * u * v * wo
    if cost_in < cost_out and not shared:
        # mix x1 first: y[z, i, v, w] = sum_u x1[z, i, u] W[u, v, w]
        y = backend.einsum("ziu,zuq->ziq", p.B1.ir_mul, ops.reshape(w, (-1, u, v * wo)))
        cy = _components(ops.reshape(y, (-1, p.d1, v, wo)))
        out.add_components(ins.i_out, p.cg(cy, p.B2.comp, lambda yi, r: ops.sum(yi * r[:, :, None], axis=1)))
        return
    t = ops.stack(p.cg(p.B1.comp, p.B2.comp, lambda a, b: ops.reshape(_outer(a, b), (-1, u * v))), axis=2)  # [Z, u*v, d3]
    if shared:
        out.mix_output_side(ins.i_out, t, ops.reshape(w, (u * v, wo)))
    else:
        out.add(ins.i_out, backend.einsum("zqk,zqw->zwk", t, ops.reshape(w, (-1, u * v, wo))))


def _uvu_uvv(p, out):
    """Channels of one input kept (``uvu``: x1's, ``uvv``: x2's), the other side summed with weights."""
    ins, w, shared = p.ins, p.w, p.shared
    uvu = ins.connection_mode == "uvu"
    if (p.m2 if uvu else p.m1) == 1 and w is not None:
        # out[z, u, k] = w[z, u] * sum_i x_i[z, u] M[z, i, k], M from the one-channel side:
        # d1 broadcast multiply-adds instead of one op per Clebsch-Gordan non-zero
        if uvu:
            t = _apply_coupling(p.B1.comp, _coupling(p.B2, p.l1, p.l2, p.l3, p.pw, keep=1), p.d1)
            wk = w[..., 0]
        else:
            t = _apply_coupling(p.B2.comp, _coupling(p.B1, p.l1, p.l2, p.l3, p.pw, keep=2), p.d2)
            wk = w[..., 0, :]
        out.add(ins.i_out, t * (wk[None, :, None] if shared else wk[:, :, None]))
        return
    # uvu: out[z,k,u] = sum_ij C x1[z,i,u] b[z,j,u], b[z,j,u] = sum_v x2[z,j,v] w[u,v]
    other, keep, m_keep, m_other = (p.B2, p.B1, p.m1, p.m2) if uvu else (p.B1, p.B2, p.m2, p.m1)
    if w is None:
        b = _components(ops.sum(other.ir_mul, axis=2, keepdims=True))  # [Z, d, 1]
    else:
        wt = w if uvu else ops.swapaxes(w, -1, -2)  # [(Z,) keep, other]
        if m_other == 1:
            b = _scaled_components(other, wt[..., 0], shared)
        elif shared:
            b = _components(ops.reshape(ops.matmul(ops.reshape(other.ir_mul, (-1, m_other)), ops.transpose(wt)),
                                        (-1, other.dim, m_keep)))
        else:
            b = _components(backend.einsum("zjv,zuv->zju", other.ir_mul, wt))
    out.add_components(ins.i_out, p.cg(keep.comp, b, _mul) if uvu else p.cg(b, keep.comp, _mul))


def _uuw_uuu(p, out):
    """Channel ``u`` of x1 with channel ``u`` of x2 (``uuu``: kept, ``uuw``: mixed to ``w``)."""
    ins, w, shared = p.ins, p.w, p.shared
    comps = p.cg(p.B1.comp, p.B2.comp, _mul)
    if ins.connection_mode == "uuu":
        if w is not None:
            wu = w[None, :] if shared else w
            comps = [c * wu for c in comps]
        out.add_components(ins.i_out, comps)
        return
    t = ops.stack(comps, axis=2)  # [Z, u, d3]
    if w is None:
        out.add(ins.i_out, ops.sum(t, axis=1, keepdims=True))
    elif shared:
        out.mix_output_side(ins.i_out, t, w)
    else:
        out.add(ins.i_out, backend.einsum("zuk,zuw->zwk", t, w))


def _outer_modes(p, out):
    """Outer products over channel pairs: ``uvuv`` (all pairs kept), ``uvu<v`` (pairs u < v kept),
    ``u<vw`` (pairs u < v mixed to ``w``)."""
    ins, w, shared = p.ins, p.w, p.shared
    outer = p.cg(p.B1.comp, p.B2.comp, _outer)  # list over k of [Z, u, v]
    if ins.connection_mode == "uvuv":
        comps = [ops.reshape(o, (-1, p.m1 * p.m2)) for o in outer]
        if w is not None:
            wf = ops.reshape(w, (1, p.m1 * p.m2)) if shared else ops.reshape(w, (-1, p.m1 * p.m2))
            comps = [c * wf for c in comps]
        out.add_components(ins.i_out, comps)
        return
    iu, iv = np.triu_indices(p.m1, 1)
    flat_idx = (iu * p.m2 + iv).astype("int32")
    comps = [ops.take(ops.reshape(o, (-1, p.m1 * p.m2)), flat_idx, axis=1) for o in outer]  # [Z, q] each
    if ins.connection_mode == "uvu<v":
        if w is not None:
            wq = ops.reshape(w, (1, -1)) if shared else w
            comps = [c * wq for c in comps]
        out.add_components(ins.i_out, comps)
        return
    t = ops.stack(comps, axis=2)  # [Z, q, d3]
    if shared:
        out.mix_output_side(ins.i_out, t, w)
    else:
        out.add(ins.i_out, backend.einsum("zqk,zqw->zwk", t, w))


_KERNELS = {"uvw": _uvw, "uvu": _uvu_uvv, "uvv": _uvu_uvv, "uuw": _uuw_uuu, "uuu": _uuw_uuu,
            "uvuv": _outer_modes, "uvu<v": _outer_modes, "u<vw": _outer_modes}


def general_tensor_product(plan, x1, x2, w, shared_weights):
    """``[Z, dim1] x [Z, dim2]`` with weights ``[numel]`` (shared) or ``[Z, numel]`` -> ``[Z, dim_out]``."""
    A1, A2 = _blocks(x1, plan.irreps_in1), _blocks(x2, plan.irreps_in2)
    out = _Outputs(plan, A1)
    for ins, s in plan.paths:
        if s is None:
            w_path = None
        elif shared_weights:
            w_path = ops.reshape(w[s.start : s.stop], ins.path_shape)
        else:
            w_path = ops.reshape(w[:, s.start : s.stop], (-1,) + ins.path_shape)
        _KERNELS[ins.connection_mode](_Path(plan, ins, A1, A2, w_path, shared_weights), out)
    return out.assemble(x1)
