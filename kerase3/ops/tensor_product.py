"""Clebsch-Gordan tensor products by instruction list, on ``keras.ops``.

Inputs are read per component ``[Z, mul]`` straight from e3nn's mul_ir layout.
When one side of a path has a single channel (spherical harmonics, gates), the
Clebsch-Gordan tensor is contracted with it first into a coupling matrix
``M[z, i, k]`` and applied as ``2l+1`` broadcast multiply-adds over the channels;
otherwise the sum is unrolled over the non-zeros of ``wigner_3j``. Neither becomes
a small per-sample matrix product. Channel mixing with shared weights is a few
large matrix products: paths mixed on the input side are grouped by input block,
those mixed on the output side by output block; each path is mixed on its cheaper
side. Output blocks are assembled in the mul_ir layout.
"""

import functools

import numpy as np
from keras import ops

from ._layout import broadcast_batch, check_last_dim, check_weights, flatten_batch, split_blocks, zeros_rows
from ..o3 import wigner_3j
from ._plan import TensorProductPlan, cg_terms
from ._coupled import coupled_paths, coupled_tensor_product

__all__ = ["tensor_product", "TensorProductPlan"]


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


def _comp(block):
    """Cached component accessor of a block ``[Z, d, mul]`` -> ``[Z, mul]``."""
    cache = {}

    def get(i):
        if i not in cache:
            cache[i] = block[:, i, :]
        return cache[i]

    return get


def _stack(comps):
    return ops.stack(comps, axis=1)


class _Block:
    """One input block, viewed lazily as components ``[Z, mul]`` (read straight from the
    mul_ir layout, no transpose) or as an ir_mul tensor ``[Z, 2l+1, mul]`` (for matrix products)."""

    def __init__(self, x2d, mul, dim):
        self.mul, self.dim = mul, dim
        self._mul_ir = ops.reshape(x2d, (-1, mul, dim))
        self._ir_mul = None
        self._comps = {}

    @property
    def ir_mul(self):
        if self._ir_mul is None:
            self._ir_mul = ops.transpose(self._mul_ir, (0, 2, 1))
        return self._ir_mul

    def comp(self, i):
        if i not in self._comps:
            self._comps[i] = self._mul_ir[:, :, i] if self.dim > 1 else self._mul_ir[:, :, 0]
        return self._comps[i]


class _MulIrOut:
    """A contribution already in the output's mul_ir layout ``[Z, mul, 2l+1]``."""

    def __init__(self, t):
        self.t = t


def _coupling(B2, l1, l2, l3, pw):
    """``M[z, i, k] = pw * sum_j C_ijk x2[z, j]`` for a block of multiplicity 1: ``[Z, d1, d3]``."""
    C = (pw * wigner_3j(l1, l2, l3)).transpose(1, 0, 2).reshape(2 * l2 + 1, -1)
    x2 = ops.reshape(B2._mul_ir, (-1, 2 * l2 + 1))
    M = ops.matmul(x2, ops.convert_to_tensor(C, dtype=x2.dtype))
    return ops.reshape(M, (-1, 2 * l1 + 1, 2 * l3 + 1))


def _coupling_left(B1, l1, l2, l3, pw):
    """``M[z, j, k] = pw * sum_i C_ijk x1[z, i]`` for a block of multiplicity 1: ``[Z, d2, d3]``."""
    C = (pw * wigner_3j(l1, l2, l3)).reshape(2 * l1 + 1, -1)
    x1 = ops.reshape(B1._mul_ir, (-1, 2 * l1 + 1))
    M = ops.matmul(x1, ops.convert_to_tensor(C, dtype=x1.dtype))
    return ops.reshape(M, (-1, 2 * l2 + 1, 2 * l3 + 1))


def _apply_coupling(get_i, M, d1):
    """``out[z, u, k] = sum_i a_i[z, u] M[z, i, k]`` as d1 broadcast multiply-adds (never a small
    per-sample matrix product): ``[Z, u, d3]``."""
    out = None
    for i in range(d1):
        t = get_i(i)[:, :, None] * M[:, None, i, :]
        out = t if out is None else out + t
    return out


def _blocks(x2d, irreps):
    return [None if mul == 0 else _Block(b, mul, ir.dim) for b, (mul, ir) in zip(split_blocks(x2d, irreps), irreps)]


def tensor_product(plan, x1, x2, weights=None, shared_weights=True):
    """Tensor product ``x1 ⊗ x2`` following ``plan``'s instructions.

    Args:
        plan: `TensorProductPlan`.
        x1: tensor ``(..., irreps_in1.dim)``.
        x2: tensor ``(..., irreps_in2.dim)``.
        weights: ``(weight_numel,)`` if ``shared_weights`` else ``(..., weight_numel)``
            broadcast against the batch; None when no instruction has weights.
        shared_weights: `bool`.

    Returns:
        Tensor ``(..., irreps_out.dim)``; the batch axes are broadcast.
    """
    name = plan.name
    x1 = ops.convert_to_tensor(x1)
    x2 = ops.convert_to_tensor(x2, dtype=x1.dtype)
    check_last_dim(x1, plan.irreps_in1, name, "x1")
    check_last_dim(x2, plan.irreps_in2, name, "x2")
    if plan.weight_numel > 0:
        weights = check_weights(weights, plan.weight_numel, x1.dtype, name, "weights")
    if shared_weights or plan.weight_numel == 0:
        (x1, x2), batch = broadcast_batch([x1, x2])
        w_flat = weights
    else:
        (x1, x2, weights), batch = broadcast_batch([x1, x2, weights])
        w_flat = flatten_batch(weights)
    x1f, x2f = flatten_batch(x1), flatten_batch(x2)
    if not hasattr(plan, "_coupled"):
        plan._coupled = coupled_paths(plan)
    if plan._coupled is not None:
        out = coupled_tensor_product(plan, plan._coupled, x1f, x2f, w_flat, shared_weights)
        return ops.reshape(out, tuple(batch) + (plan.irreps_out.dim,))
    A1 = _blocks(x1f, plan.irreps_in1)
    A2 = _blocks(x2f, plan.irreps_in2)
    irreps_out = plan.irreps_out
    contrib = [[] for _ in irreps_out]
    out_gemm = [[] for _ in irreps_out]  # shared-weight mixing on the output side: (t [Z, K, d3], W [K, w])
    in_gemm = {}  # shared-weight one-channel uvw mixing on the input side, by i_in1: [(W [u, w], i_out, M)]

    w_offsets = {id(ins): s for ins, s in plan.weight_slices()}

    def weight(ins):
        s = w_offsets[id(ins)]
        if shared_weights:
            return ops.reshape(w_flat[s.start : s.stop], ins.path_shape)
        return ops.reshape(w_flat[:, s.start : s.stop], (-1,) + ins.path_shape)

    for ins in plan.instructions:
        (m1, ir1), (m2, ir2), (mo, iro) = plan.irreps_in1[ins.i_in1], plan.irreps_in2[ins.i_in2], irreps_out[ins.i_out]
        if m1 == 0 or m2 == 0 or mo == 0 or ins.path_weight == 0 or 0 in ins.path_shape:
            continue  # contributes nothing (u<v modes with one channel have no pairs)
        B1, B2 = A1[ins.i_in1], A2[ins.i_in2]
        c1, c2 = B1.comp, B2.comp
        l1, l2, l3 = ir1.l, ir2.l, iro.l
        pw = ins.path_weight
        mode = ins.connection_mode
        w = weight(ins) if ins.has_weight else None
        d1, d3 = ir1.dim, iro.dim
        nnz = len(cg_terms(l1, l2, l3))

        if mode == "uvw" and ins.path_shape[1] == 1:
            # x2 has one channel: couple through M[z, i, k] and mix channels on the cheaper side
            u, _, wo = ins.path_shape
            M = _coupling(B2, l1, l2, l3, pw)
            Wm = ops.reshape(w, (u, wo)) if shared_weights else ops.reshape(w, (-1, u, wo))
            if d1 < d3:
                if shared_weights:
                    in_gemm.setdefault(ins.i_in1, []).append((Wm, ins.i_out, M))
                else:
                    y = ops.einsum("ziu,zuw->ziw", B1.ir_mul, Wm)
                    contrib[ins.i_out].append(_MulIrOut(_apply_coupling(lambda i, y=y: y[:, i, :], M, d1)))
            else:
                t = _apply_coupling(B1.comp, M, d1)  # [Z, u, d3]
                if shared_weights:
                    out_gemm[ins.i_out].append((t, Wm))
                else:
                    contrib[ins.i_out].append(_MulIrOut(ops.einsum("zuk,zuw->zwk", t, Wm)))

        elif mode == "uvw":
            u, v, wo = ins.path_shape
            cost_in = d1 * u * v * wo + nnz * v * wo
            cost_out = nnz * u * v + d3 * u * v * wo
            if cost_in < cost_out and not shared_weights:
                # mix x1 first: y[z, i, v, w] = sum_u x1[z, i, u] W[u, v, w]
                y = ops.einsum("ziu,zuq->ziq", B1.ir_mul, ops.reshape(w, (-1, u, v * wo)))
                cy = _comp(ops.reshape(y, (-1, d1, v, wo)))
                contrib[ins.i_out].append(_cg(l1, l2, l3, pw, cy, c2, lambda yi, r: ops.sum(yi * r[:, :, None], axis=1)))
            else:
                t = _cg(l1, l2, l3, pw, c1, c2, lambda a, b: ops.reshape(_outer(a, b), (-1, u * v)))
                t = ops.stack(t, axis=2)  # [Z, u*v, d3]
                Wm = ops.reshape(w, (u * v, wo)) if shared_weights else ops.reshape(w, (-1, u * v, wo))
                if shared_weights:
                    out_gemm[ins.i_out].append((t, Wm))
                else:
                    contrib[ins.i_out].append(_MulIrOut(ops.einsum("zqk,zqw->zwk", t, Wm)))

        elif mode in ("uvu", "uvv") and (m2 if mode == "uvu" else m1) == 1 and w is not None:
            # out[z, u, k] = w[z, u] * sum_i x_i[z, u] M[z, i, k], M from the one-channel side:
            # d1 broadcast multiply-adds instead of one op per Clebsch-Gordan non-zero
            if mode == "uvu":
                t = _apply_coupling(B1.comp, _coupling(B2, l1, l2, l3, pw), d1)
                wk = w[..., 0]
            else:
                t = _apply_coupling(B2.comp, _coupling_left(B1, l1, l2, l3, pw), ir2.dim)
                wk = w[..., 0, :]
            wk = wk[None, :, None] if shared_weights else wk[:, :, None]
            contrib[ins.i_out].append(_MulIrOut(t * wk))

        elif mode in ("uvu", "uvv"):
            # uvu: out[z,k,u] = sum_ij C x1[z,i,u] b[z,j,u], b[z,j,u] = sum_v x2[z,j,v] w[u,v]
            if mode == "uvu":
                other, ck, m_keep, m_other = B2, c1, m1, m2
            else:
                other, ck, m_keep, m_other = B1, c2, m2, m1
            if w is None:
                red = ops.sum(other.ir_mul, axis=2, keepdims=True)  # [Z, d, 1]
                b = _comp(red)
            else:
                if mode == "uvu":
                    wt = w  # [(Z,) u, v]: keep index first
                else:
                    wt = ops.swapaxes(w, -1, -2)  # [(Z,) v, u]: keep index first
                if m_other == 1:
                    wk = wt[..., 0]  # [(Z,) keep]
                    b = _comp_scaled(other, wk, shared_weights)
                elif shared_weights:
                    d_o = other.dim
                    bb = ops.reshape(ops.matmul(ops.reshape(other.ir_mul, (-1, m_other)), ops.transpose(wt)), (-1, d_o, m_keep))
                    b = _comp(bb)
                else:
                    bb = ops.einsum("zjv,zuv->zju", other.ir_mul, wt)
                    b = _comp(bb)
            if mode == "uvu":
                out = _cg(l1, l2, l3, pw, ck, b, _mul)
            else:
                out = _cg(l1, l2, l3, pw, b, ck, _mul)
            contrib[ins.i_out].append(out)

        elif mode in ("uuw", "uuu"):
            comps = _cg(l1, l2, l3, pw, c1, c2, _mul)
            if mode == "uuu":
                if w is not None:
                    wu = w[None, :] if shared_weights else w
                    comps = [c * wu for c in comps]
                contrib[ins.i_out].append(comps)
                continue
            t = ops.stack(comps, axis=2)  # [Z, u, d3]
            if w is None:
                contrib[ins.i_out].append(_MulIrOut(ops.sum(t, axis=1, keepdims=True)))
            elif shared_weights:
                out_gemm[ins.i_out].append((t, w))
            else:
                contrib[ins.i_out].append(_MulIrOut(ops.einsum("zuk,zuw->zwk", t, w)))

        else:  # uvuv, uvu<v, u<vw: outer products over (u, v)
            outer = _cg(l1, l2, l3, pw, c1, c2, _outer)  # list over k of [Z, u, v]
            if mode == "uvuv":
                comps = [ops.reshape(o, (-1, m1 * m2)) for o in outer]
                if w is not None:
                    wf = ops.reshape(w, (-1, m1 * m2)) if not shared_weights else ops.reshape(w, (1, m1 * m2))
                    comps = [c * wf for c in comps]
                contrib[ins.i_out].append(comps)
            else:
                iu, iv = np.triu_indices(m1, 1)
                flat_idx = (iu * m2 + iv).astype("int32")
                comps = [ops.take(ops.reshape(o, (-1, m1 * m2)), flat_idx, axis=1) for o in outer]  # [Z, q] each
                t = ops.stack(comps, axis=2)  # [Z, q, d3]
                if mode == "uvu<v":
                    if w is not None:
                        wq = ops.reshape(w, (1, -1)) if shared_weights else w
                        comps = [c * wq for c in comps]
                    contrib[ins.i_out].append(comps)
                elif shared_weights:
                    out_gemm[ins.i_out].append((t, w))
                else:
                    contrib[ins.i_out].append(_MulIrOut(ops.einsum("zqk,zqw->zwk", t, w)))

    # shared-weight paths mixed on the input side: one matrix product per input block
    for i_in1, items in in_gemm.items():
        a1 = A1[i_in1].ir_mul
        d1, u = plan.irreps_in1[i_in1].ir.dim, plan.irreps_in1[i_in1].mul
        W = items[0][0] if len(items) == 1 else ops.concatenate([it[0] for it in items], axis=1)
        Y = ops.reshape(ops.matmul(ops.reshape(a1, (-1, u)), W), (-1, d1, W.shape[1]))
        start = 0
        for Wp, i_out, M in items:
            n = Wp.shape[1]
            contrib[i_out].append(_MulIrOut(_apply_coupling(lambda i, s0=start, n=n: Y[:, i, s0 : s0 + n], M, d1)))
            start += n
    # shared-weight paths mixed on the output side: one matrix product per output block
    for i_out, items in enumerate(out_gemm):
        if not items:
            continue
        T = items[0][0] if len(items) == 1 else ops.concatenate([t for t, _ in items], axis=1)  # [Z, K, d3]
        W = items[0][1] if len(items) == 1 else ops.concatenate([w for _, w in items], axis=0)  # [K, w]
        contrib[i_out].append(_MulIrOut(ops.einsum("zqk,qw->zwk", T, W)))

    # assemble each output block in the mul_ir layout: component lists are stacked on the last
    # axis (no transpose), ir_mul tensors from matrix products are transposed once
    parts = []
    for i_out, (mul, ir) in enumerate(irreps_out):
        if mul == 0:
            continue
        comps, tensors = None, []
        for c in contrib[i_out]:
            if isinstance(c, list):
                comps = c if comps is None else [a + b for a, b in zip(comps, c)]
            else:
                tensors.append(c.t if isinstance(c, _MulIrOut) else ops.transpose(c, (0, 2, 1)))
        acc = None
        if comps is not None:
            acc = ops.stack(comps, axis=2) if ir.dim > 1 else comps[0][:, :, None]
        for t in tensors:
            acc = t if acc is None else acc + t
        if acc is None:
            parts.append(zeros_rows(x1f, mul * ir.dim))
        else:
            parts.append(ops.reshape(acc, (-1, mul * ir.dim)))
    if not parts:
        out = ops.zeros_like(x1f[:, :0])
    else:
        out = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)
    return ops.reshape(out, tuple(batch) + (irreps_out.dim,))


def _comp_scaled(block, wk, shared):
    """Components of a ``_Block`` with ``mul = 1`` times per-channel weights ``wk [(Z,) m]``: ``[Z, m]`` each."""
    cache = {}
    scale = wk[None, :] if shared else wk

    def get(j):
        if j not in cache:
            cache[j] = block.comp(j) * scale
        return cache[j]

    return get
