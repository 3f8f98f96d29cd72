"""The convolution tensor product, blocked by input irrep, with a hand-written gradient.

Covers plans whose every instruction is ``uvu`` with weights and a one-channel second
input (spherical harmonics of the edge vectors): the product of NequIP, MACE and of
``kerase3.layers.Convolution``. All paths leaving one input block ``b`` (``mul x l1``) are
computed together. With ``K`` the output components of all of them side by side,

    M[z, i, K]   = sum_j C_b[j, i, K] x2[z, j]              (one matmul for all blocks)
    y[z, K, u]   = sum_i M[z, i, K] x1[z, i, u]              (2l1+1 broadcast multiply-adds)
    out[z, K, u] = w_p(K)[z, u] y[z, K, u]                   (each path's weights on its K range)

and, for an output cotangent ``g[z, K, u]`` with ``gw = w g``,

    dx1[z, i, u] = sum_K M[z, i, K] gw[z, K, u]                (small products per edge)
    dw_p[z, u]   = sum_{K in p} g[z, K, u] y[z, K, u]
    dM[z, i, K]  = sum_u x1[z, i, u] gw[z, K, u],           dx2 = dM C^T.

Inside, features are in the "ir_mul" layout (a block ``[Z, 2l+1, mul]`` flattened, channels
innermost): every elementwise loop XLA emits then runs along the channels, vectorised, and a
whole product is a few dozen operations instead of one per Clebsch-Gordan component (on this
project's 2-core CPU the previous per-component kernel traced 25x more operations, compiled 3x
slower and ran slower with forces in the loss; ``benchmarks/RESULTS.md``). The edge-level
result stays in the kernel's own layout (`CoupledTables.native_dim` columns: per input block,
``[K, mul]``): `kerase3.ops.scatter_tensor_product` sums it over the edges of each receiver
first and converts the node-level sums, so the edge tensors are never transposed.

The product is trilinear, so every derivative of every order is again the product or one of
its partials at other arguments; both carry a gradient written that way (`coupled_native`), so
forces in a loss (second order) and beyond run these sums instead of XLA's automatic gradient.
First and second derivatives equal automatic differentiation of the general kernel to 1e-10
(``tests/ops/test_coupled_gradient.py``).

On graphs, `coupled_scatter` makes gather, product and sum at the receivers one map (linear in
the sender features, the harmonics and the weights, or in the radial network's last hidden
features and last matrix when the weights are their product) and computes it, and every
derivative of it, in a loop over blocks of `KernelOptions.edge_chunk` edges: no tensor of all edges' messages
or path weights is ever formed (``benchmarks/RESULTS.md``, "edges a block at a time"). The
products and partials of a second derivative share one loop (their path weights are formed
once per block).
"""


from typing import NamedTuple

import numpy as np
from keras import ops

from .. import backend
from ..o3 import wigner_3j
from .layout import from_blocks, split_sizes
from .options import current_kernel_options


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


class CoupledPath(NamedTuple):
    """One path of a `CoupledBlock`."""

    weights: slice  # its weights' slice in the plan's weights
    components: slice  # its range among the block's num_components output components
    output: int  # the output block it reaches (index in irreps_out)
    dim_out: int  # 2l+1 of that output


class CoupledBlock(NamedTuple):
    """The paths of one input block of a coupled plan, side by side."""

    index: int  # the block's index in irreps_in1
    mul: int
    dim_in: int  # 2l+1 of the input irrep
    num_components: int  # output components of all its paths together
    paths: list  # its `CoupledPath`s
    path_of: np.ndarray  # the path of each output component (the compact form's gather)


class CoupledTables:
    """Constant tables of a coupled plan, made once with the plan: per input block, the coupling
    matrix of all its paths side by side, each path's weights and its place in the output.

    Attributes:
        C: ``[dim2, sum_b (2l1+1) K_b]``, all blocks' coupling matrices.
        blocks: one `CoupledBlock` per input block with paths.
        native_dim: columns of the kernel's output (``sum_b K_b mul_b``).
    """

    def __init__(self, plan, paths):
        i1, i2, io = plan.irreps_in1, plan.irreps_in2, plan.irreps_out
        s2 = i2.slices()
        by_block = {}
        for ins, ws in paths:
            by_block.setdefault(ins.i_in1, []).append((ins, ws))
        cols, self.blocks, wcols = [], [], []
        noff = 0
        for b in sorted(by_block):
            mul, ir1 = i1[b]
            d1 = ir1.dim
            K = sum(io[ins.i_out].ir.dim for ins, _ in by_block[b])
            C = np.zeros((i2.dim, d1, K))
            k0, places = 0, []
            for ins, ws in by_block[b]:
                (_, ir2), (_, iro) = i2[ins.i_in2], io[ins.i_out]
                C[s2[ins.i_in2], :, k0 : k0 + iro.dim] = ins.path_weight * wigner_3j(ir1.l, ir2.l, iro.l).transpose(1, 0, 2)
                places.append(CoupledPath(weights=ws, components=slice(k0, k0 + iro.dim), output=ins.i_out, dim_out=iro.dim))
                k0 += iro.dim
            cols.append(C.reshape(i2.dim, d1 * K))
            path_of = np.concatenate([np.full(pl.dim_out, i) for i, pl in enumerate(places)]).astype(np.int32)
            self.blocks.append(CoupledBlock(index=b, mul=mul, dim_in=d1, num_components=K, paths=places, path_of=path_of))
            wcols.extend(np.arange(ws.start, ws.stop) for ins, ws in by_block[b])
            noff += mul * K
        self.C = np.concatenate(cols, axis=1)
        wcols = np.concatenate(wcols)
        # the weights in block order (None: they already are)
        self.wperm = None if np.array_equal(wcols, np.arange(plan.weight_numel)) else wcols
        self.native_dim = noff
        # column sizes of the one split per tensor (slices per block would each add a padded
        # gradient; a split's gradient is one concatenate)
        self.x1_sizes = [mul * ir.dim for mul, ir in i1]
        self.m_sizes = [blk.dim_in * blk.num_components for blk in self.blocks]
        self.n_sizes = [blk.mul * blk.num_components for blk in self.blocks]
        self.w_sizes = [len(blk.paths) * blk.mul for blk in self.blocks]
        self.irreps_in1 = i1
        self.irreps_out = io
        self.out_blocks = [(mul, ir.dim) for mul, ir in io]
        self.weight_numel = plan.weight_numel

    def native_blocks(self, y):
        """Kernel output ``[Z, native_dim]`` -> one ``[Z, 2l+1, mul]`` per output block (ir_mul, as
        `kerase3.ops.linear_blocks` takes them; paths into the same block add up; None where no
        path reaches it)."""
        outs = [None] * len(self.out_blocks)
        for blk, yb in zip(self.blocks, split_sizes(y, self.n_sizes)):
            yb = ops.reshape(yb, (-1, blk.num_components, blk.mul))
            paths = blk.paths
            ts = [yb] if len(paths) == 1 else backend.split(yb, [p.components.stop - p.components.start for p in paths], axis=1)
            for p, t in zip(paths, ts):
                outs[p.output] = t if outs[p.output] is None else outs[p.output] + t
        return outs

    def to_mul_ir(self, y):
        """Kernel output ``[Z, native_dim]`` -> ``[Z, irreps_out.dim]`` in e3nn's mul_ir layout (paths
        into the same output block add up; blocks no path reaches are zeros)."""
        blocks = [ops.zeros((ops.shape(y)[0], d, mul), dtype=y.dtype) if t is None and mul * d else t
                  for t, (mul, d) in zip(self.native_blocks(y), self.out_blocks)]
        return from_blocks(blocks, self.irreps_out, (-1,), y)


def to_ir_mul(x, irreps):
    """``[Z, irreps.dim]`` mul_ir -> ir_mul (each block ``[mul, 2l+1]`` -> ``[2l+1, mul]``)."""
    parts = []
    for s, (mul, ir) in zip(irreps.slices(), irreps):
        if mul * ir.dim == 0:
            continue
        b = x[:, s]
        parts.append(b if ir.dim == 1 or mul == 1 else
                     ops.reshape(ops.transpose(ops.reshape(b, (-1, mul, ir.dim)), (0, 2, 1)), (-1, mul * ir.dim)))
    if not parts:
        return x
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)


def _block_weights(T, w, shared):
    """Each block's path weights ``[Z, P, mul]`` (``[1, P, mul]`` shared)."""
    w = ops.expand_dims(w, 0) if shared else w
    if T.wperm is not None:
        w = backend.take(w, ops.convert_to_tensor(T.wperm, dtype="int32"), axis=1)
    return [ops.reshape(wb, (-1, len(blk.paths), blk.mul)) for blk, wb in zip(T.blocks, split_sizes(w, T.w_sizes))]


def _times(a, b, reps):
    """``a * b`` where ``b`` stacks ``reps`` terms along its rows and ``a`` is shared by all of them
    (broadcast, never copied ``reps`` times)."""
    if reps == 1:
        return a * b
    shape = tuple(np.broadcast_shapes(tuple(a.shape[1:]), tuple(b.shape[1:])))
    return ops.reshape(ops.reshape(a, (1, -1) + tuple(a.shape[1:])) * ops.reshape(b, (reps, -1) + tuple(b.shape[1:])), (-1,) + shape)


def _weighted(y, wb, blk, reps=1, compact=False):
    """``y [Z, K, mul]`` times each path's weights ``wb [reps * Z, P, mul]`` on its range of ``K``:
    one product per path, concatenated along ``K`` (``reps``: `_times`). (A gather of the weights
    along ``K`` fused into the product made XLA compute every element through a dynamic index,
    unvectorised: the largest kernels of a training step.) ``compact`` (`KernelOptions.compact_max_rows`): that
    gather, one kernel instead of a product per path and a concatenation."""
    paths = blk.paths
    if len(paths) == 1:
        return _times(y, wb, reps)
    if compact:
        return _times(y, backend.take(wb, ops.convert_to_tensor(blk.path_of, dtype="int32"), axis=1), reps)
    ys = backend.split(y, [p.dim_out for p in paths], axis=1)
    ws = backend.split(wb, [1] * len(paths), axis=1)
    return ops.concatenate([_times(a, b, reps) for a, b in zip(ys, ws)], axis=1)


def _path_sums(gy, blk, compact=False):
    """``[Z, K, mul]`` -> ``[Z, P * mul]``: the sum over each path's output components (d/dw).
    One split and a sum per path: XLA fuses each sum with the product that makes ``gy``, where a
    product with a 0/1 path-by-component matrix over K needed K innermost (a transpose of ``gy``
    and back, a quarter of a training step's time in copies). ``compact`` (`KernelOptions.compact_max_rows`):
    that product, one matrix product instead of a reduction kernel per path."""
    paths = blk.paths
    if len(paths) == 1:
        return ops.sum(gy, axis=1)
    if compact:
        E = np.eye(len(paths))[blk.path_of]  # [K, P]: 1 where component k belongs to path p
        dw = backend.einsum("zku,kp->zpu", gy, ops.convert_to_tensor(E, dtype=gy.dtype))
        return ops.reshape(dw, (-1, len(paths) * blk.mul))
    parts = backend.split(gy, [p.dim_out for p in paths], axis=1)
    sums = [ops.reshape(t, (-1, blk.mul)) if p.dim_out == 1 else ops.sum(t, axis=1) for p, t in zip(paths, parts)]
    return ops.concatenate(sums, axis=-1)


def _contract(x1b, Mb, blk, compact=False):
    """``y[z, K, u] = sum_i M[z, i, K] x1[z, i, u]`` of one block (its columns of x1, in ir_mul, and
    of M) -> ``[Z, K, mul]``.

    The sum over the ``2 l1 + 1`` components is written out term by term: XLA then emits one
    elementwise loop whose innermost index is the channel (vectorised), where a reduction over
    the component axis became a scalar loop per output element (2-3x slower on this project's
    CPU, the largest kernel of a training step). ``compact`` (`KernelOptions.compact_max_rows`): one batched
    matrix product."""
    mul, d1, K = blk.mul, blk.dim_in, blk.num_components
    if compact and d1 > 1:
        return backend.einsum("zik,ziu->zku", ops.reshape(Mb, (-1, d1, K)), ops.reshape(x1b, (-1, d1, mul)))
    x1b = ops.reshape(x1b, (-1, d1, 1, mul))
    Mb = ops.reshape(Mb, (-1, d1, K, 1))
    if d1 == 1:
        return x1b[:, 0] * Mb[:, 0]
    xs, ms = backend.split(x1b, [1] * d1, axis=1), backend.split(Mb, [1] * d1, axis=1)
    y = xs[0] * ms[0]
    for xi, mi in zip(xs[1:], ms[1:]):
        y = y + xi * mi
    return ops.reshape(y, (-1, K, mul))


def _forward(T, x1, x2, w, shared, compact=False):
    M = ops.matmul(x2, ops.convert_to_tensor(T.C, dtype=x2.dtype))
    x1p, Mp = split_sizes(x1, T.x1_sizes), split_sizes(M, T.m_sizes)
    outs = []
    for blk, wb, Mb in zip(T.blocks, _block_weights(T, w, shared), Mp):
        y = _contract(x1p[blk.index], Mb, blk, compact)
        outs.append(ops.reshape(_weighted(y, wb, blk, compact=compact), (-1, blk.mul * blk.num_components)))
    return outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=-1)


def _partials(T, g, x1, x2, w, shared, need=(True, True, True), reps=1, compact=False):
    """The three partial derivatives of ``<g, TP(x1, x2, w)>`` (``g`` in the kernel's layout); only
    those ``need`` asks for (None for the others). ``reps``: the arguments stack that many terms
    along their rows, all with the same ``g``. ``compact``: `KernelOptions.compact_max_rows`."""
    M = ops.matmul(x2, ops.convert_to_tensor(T.C, dtype=x2.dtype))
    x1p, Mp, gp = split_sizes(x1, T.x1_sizes), split_sizes(M, T.m_sizes), split_sizes(g, T.n_sizes)
    dx1, dw, dM = {}, [], []
    for blk, wb, Mb, gb in zip(T.blocks, _block_weights(T, w, shared), Mp, gp):
        mul, d1, K = blk.mul, blk.dim_in, blk.num_components
        gb = ops.reshape(gb, (-1, K, mul))
        if need[2]:
            y = _contract(x1p[blk.index], Mb, blk, compact)
            gy = _times(gb, y, reps)
            dwb = _path_sums(gy, blk, compact)
            dw.append(ops.sum(dwb, axis=0) if shared else dwb)
        if not (need[0] or need[1]):
            continue
        gw = _weighted(gb, wb, blk, reps, compact)
        # two small products per edge: XLA materialises gw once for them, where reductions fused
        # with gw recomputed it (and the gather producing g) once per component (20% slower)
        if need[0]:
            dx1[blk.index] = ops.reshape(backend.einsum("zik,zku->ziu", ops.reshape(Mb, (-1, d1, K)), gw), (-1, d1 * mul))
        if need[1]:
            x1b = ops.reshape(x1p[blk.index], (-1, d1, mul))
            dM.append(ops.reshape(backend.einsum("ziu,zku->zik", x1b, gw), (-1, d1 * K)))
    dx2 = None
    if need[1]:
        dM = dM[0] if len(dM) == 1 else ops.concatenate(dM, axis=-1)
        dx2 = ops.matmul(dM, ops.convert_to_tensor(T.C.T, dtype=x2.dtype))
    if need[0]:
        parts = []
        for b, (mul, ir) in enumerate(T.irreps_in1):
            if mul * ir.dim:
                parts.append(dx1[b] if b in dx1 else ops.zeros_like(x1p[b]))
        dx1 = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)
    else:
        dx1 = None
    if need[2]:
        dw = dw[0] if len(dw) == 1 else ops.concatenate(dw, axis=-1)
        if T.wperm is not None:
            dw = backend.take(dw, ops.convert_to_tensor(np.argsort(T.wperm), dtype="int32"), axis=-1)
    else:
        dw = None
    return dx1, dx2, dw


def _cotangents(args, upstream, n):
    """The cotangents a ``custom_gradient`` function receives, as a list of ``n`` (TF passes
    them positionally, JAX as one tuple); None for the ones known to be zero (TensorFlow fills
    an output nothing used with constant zeros: a term computed from them would be zero)."""
    if upstream is not None:
        args = (upstream,)
    if len(args) == 1 and n > 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return [None if a is None or backend.known_zero(a) else a for a in args]


def _sum(terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _distinct(items, key=id):
    """``(unique, index)``: the distinct items (by object, or by ``key``) and, per item, its place
    among them."""
    unique, index, seen = [], [], {}
    for t in items:
        k = key(t)
        if k not in seen:
            seen[k] = len(unique)
            unique.append(t)
        index.append(seen[k])
    return unique, index


def _by_tensor(pairs):
    """``[(a, v), ...]`` -> ``[(a, sum of the v paired with a), ...]``, one entry per distinct tensor
    ``a`` (the same object): a product linear in ``v`` is then formed once per ``a``."""
    unique, index = _distinct([a for a, _ in pairs])
    sums = [None] * len(unique)
    for i, (_, v) in zip(index, pairs):
        sums[i] = v if sums[i] is None else sums[i] + v
    return list(zip(unique, sums))


def _detached(*args, everywhere=False):
    """The arguments without a gradient path for the forward computation of a ``custom_gradient``
    function: on TensorFlow (`kerase3.backend.unrecorded`), or on every backend (``everywhere``:
    the product itself, whose derivatives JAX then never forms from the forward loop; the
    partials' inputs stay connected on JAX, where cutting them zeroed third derivatives). An
    argument passed more than once (terms sharing it) stays one tensor."""
    unique, index = _distinct(args)
    detached = [ops.stop_gradient(a) for a in unique] if everywhere else backend.unrecorded(unique)
    return [detached[i] for i in index]


def _groups(flat, n):
    return [tuple(flat[k : k + n]) for k in range(0, len(flat), n)]


def _multilinear(forward_sum, partials_sum, n, joint_sum=None):
    """A map ``F`` linear in each of its ``n`` arguments, with a gradient of every order.

    ``forward_sum(terms)`` is ``sum_k F(*terms[k])``; ``partials_sum(g, terms, picks)`` is, for each
    argument ``j``, the sum over the terms ``k`` with ``picks[k][j]`` of the partial derivative
    ``d<g, F>/d(argument j)`` at ``terms[k]`` (zeros where no term picks it). ``<g, F>`` is linear
    in each of its ``n + 1`` arguments, so every derivative of every order is again ``F`` or one
    of its partials at other arguments: the second-order terms of one call (``n`` products and
    ``n`` partials, e.g. forces in a loss) are one ``forward_sum`` and one ``partials_sum`` over
    stacked terms (one traced computation each instead of ``n``); higher orders take the terms
    one by one. ``joint_sum(g, terms, picks)``, when given, returns both at once (one loop over
    the edges instead of two: what the terms share, such as their path weights, is computed once).
    """
    everything = (True,) * n

    def product_sum(terms):
        @ops.custom_gradient
        def f(*flat):
            def grad(*args, upstream=None):
                (g,) = _cotangents(args, upstream, 1)
                if g is None:
                    return [None] * len(flat)
                out = []
                for t in _groups(flat, n):
                    out.extend(partials(g, [t], (everything,)))
                return out

            return forward_sum(_groups(_detached(*flat, everywhere=True), n)), grad

        return f(*[a for t in terms for a in t])

    def partials(g, terms, picks):
        picks = tuple(picks)

        @ops.custom_gradient
        def f(g, *flat):
            def grad(*args, upstream=None):
                return through_partials(g, flat, picks, _cotangents(args, upstream, n))

            g_, *flat_ = _detached(g, *flat)
            return tuple(partials_sum(g_, _groups(flat_, n), picks)), grad

        return f(g, *[a for t in terms for a in t])

    def through_partials(g, flat, picks, cot):
        """The gradient of ``partials(g, terms, picks)`` for the cotangents ``cot`` of its outputs:
        ``[d/dg] + d/d(each argument of each term)``."""
        dg, dflat = [], []
        for t, pk in zip(_groups(flat, n), picks):
            d = second(g, t, [c if p else None for c, p in zip(cot, pk)])
            dg.append(d[0])
            dflat.extend(d[1:])
        return [_sum(dg)] + dflat

    def both(g, terms, picks):
        """``(product_sum(terms), partials(g, terms, picks))``, computed together by ``joint_sum``."""
        picks = tuple(picks)
        if joint_sum is None:
            return product_sum(terms), partials(g, terms, picks)

        @ops.custom_gradient
        def f(g, *flat):
            def grad(*args, upstream=None):
                c_prod, *cot = _cotangents(args, upstream, n + 1)
                out = through_partials(g, flat, picks, cot) if any(c is not None for c in cot) else [None] * (1 + len(flat))
                if c_prod is not None:  # through the products: each term's partials at c_prod
                    for k, t in enumerate(_groups(flat, n)):
                        for j, v in enumerate(partials(c_prod, [t], (everything,))):
                            out[1 + k * n + j] = _sum([out[1 + k * n + j], v])
                return out

            g_, *flat_ = _detached(g, *flat)
            prod, parts = joint_sum(g_, _groups(flat_, n), picks)
            return (prod,) + tuple(parts), grad

        out = f(g, *[a for t in terms for a in t])
        return out[0], out[1:]

    def second(g, t, cot):
        """``(d/dg, d/d(each argument))`` of ``sum_j <cot_j, d<g, F>/d(argument j)>`` at ``t``: F with
        one argument replaced by its cotangent (d/dg), and for every other argument the partials
        with one argument replaced."""
        swapped = [(k, t[:k] + (a,) + t[k + 1 :]) for k, a in enumerate(cot) if a is not None]
        if not swapped:
            return (None,) * (n + 1)
        dg, d = both(g, [u for _, u in swapped], [tuple(j != k for j in range(n)) for k, _ in swapped])
        return (dg,) + tuple(d)

    return lambda *args: product_sum([tuple(args)])


def _picked(parts, picks, terms):
    """Per argument ``j``: the sum of ``parts[k][j]`` over the terms that pick it (zeros shaped like
    the argument where none does)."""
    out = []
    for j in range(len(picks[0])):
        sel = [p[j] for p, pk in zip(parts, picks) if pk[j]]
        out.append(_sum(sel) if sel else ops.zeros_like(terms[0][j]))
    return out


def coupled_native(T, x1, x2, w, shared_weights):
    """``x1 [Z, dim1]`` (ir_mul) ``x x2 [Z, dim2]`` with weights ``[Z, numel]`` (or ``[numel]`` shared)
    -> ``[Z, T.native_dim]`` in the kernel's layout (`CoupledTables.to_mul_ir` converts it), with
    a hand-written gradient of every order.
    """
    compact = _compact(x1.shape[0])

    def forward_sum(terms):
        return _sum([_forward(T, *t, shared_weights, compact) for t in terms])

    def partials_sum(g, terms, picks):
        return _picked([_partials(T, g, *t, shared_weights, need=pk, compact=compact) for t, pk in zip(terms, picks)],
                       picks, terms)

    return _multilinear(forward_sum, partials_sum, 3)(x1, x2, w)


def _executor_forms():
    """True where the kernel is traced for TensorFlow's executor (no XLA) and takes its forms
    (`KernelOptions.whole_edges_without_xla`)."""
    return current_kernel_options().whole_edges_without_xla and not backend.xla_traced()


def _compact(rows):
    return (rows is not None and rows <= current_kernel_options().compact_max_rows) or _executor_forms()


def _pad_edges(tensors, num_edges, chunk):
    """Per-edge tensors zero-padded to a multiple of ``chunk`` rows (for edge counts known only
    when the program runs; padded edges have zero weights and harmonics: they add nothing)."""
    pad = (num_edges + chunk - 1) // chunk * chunk - num_edges
    return [ops.concatenate([t, ops.zeros((pad,) + tuple(ops.shape(t)[1:]), dtype=t.dtype)], axis=0) for t in tensors]


def _rows(ts):
    return ts[0] if len(ts) == 1 else ops.concatenate(ts, axis=0)


def _parts(y, n):
    """``[n * Z, ...]`` -> the ``n`` stacked terms' ``[Z, ...]``."""
    if n == 1:
        return [y]
    return ops.split(y, n, axis=0)


def _on_edges(x, s, rows):
    """The terms' product arguments on one set of edges: per term its node features ``x`` gathered
    by ``s``, and ``(e, w)`` from its per-edge arguments in ``rows``, ``(e, w)`` or ``(e, h, W)``
    with ``w = h W``. Each distinct gather and each distinct product ``h W`` is formed once (the
    terms of a second derivative share them; forward and partials of one loop share all)."""
    ux, ix = _distinct(x)
    gathered = [backend.take(xk, s, axis=0) for xk in ux]
    uw, iw = _distinct(rows, key=lambda t: tuple(id(a) for a in t[1:]))
    weights = [t[1] if len(t) == 2 else ops.matmul(t[1], t[2]) for t in uw]
    return [gathered[i] for i in ix], [(t[0], weights[i]) for t, i in zip(rows, iw)]


def _stacked_forward(T, xs, ew, compact=False):
    """The sum of the terms' messages on one set of edges from their arguments there
    (`_on_edges`); all terms in one product (``compact``: `KernelOptions.compact_max_rows`)."""
    msg = _forward(T, _rows(xs), _rows([e for e, _ in ew]), _rows([w for _, w in ew]), False, compact)
    return _sum(_parts(msg, len(ew)))


def _stacked_partials(T, g, xs, ew, r, rows, picks, new=None, compact=False):
    """Partials on one set of edges, summed over the terms that pick them: per edge ``dx1`` (still
    to be summed at the senders), ``de`` and ``dw`` -- or, for weights ``h W``, ``dh = dw W^T`` and
    this set's part of ``dW = h^T dw`` (``new``: 1 on the edges that count in it). ``xs`` and ``ew``
    are the terms' arguments there (`_on_edges`), ``rows`` their per-edge arguments; ``g`` is
    gathered by the receivers ``r``. Each of the kernel's partials is computed once, for the terms
    that need it stacked (one traced computation however many terms)."""
    gr = backend.take(g, r, axis=0)
    factored = len(rows[0]) == 3
    # the terms that need each of the kernel's partials d/dx1, d/de, d/dw (dh and dW come from dw)
    sel = [[k for k, pk in enumerate(picks) if (pk[j] if j < 2 or not factored else pk[2] or pk[3])] for j in range(3)]
    d = [[], [], []]
    if len(rows) == 1:  # one term: its partials together (they share intermediates)
        need = tuple(bool(sk) for sk in sel)
        if any(need):
            p = _partials(T, gr, xs[0], *ew[0], False, need=need, compact=compact)
            d = [[(0, p[j])] if need[j] else [] for j in range(3)]
    else:
        for j in range(3):
            if sel[j]:
                p = _partials(T, gr, _rows([xs[k] for k in sel[j]]), _rows([ew[k][0] for k in sel[j]]),
                              _rows([ew[k][1] for k in sel[j]]), False, need=tuple(i == j for i in range(3)), reps=len(sel[j]),
                              compact=compact)
                d[j] = list(zip(sel[j], _parts(p[j], len(sel[j]))))
    dx = _sum([v for _, v in d[0]])
    de = _sum([v for _, v in d[1]])
    out = [ops.zeros_like(xs[0]) if dx is None else dx, ops.zeros_like(rows[0][0]) if de is None else de]
    if not factored:
        dw = _sum([v for _, v in d[2]])
        return out + [ops.zeros_like(rows[0][1]) if dw is None else dw]
    # dh = sum_k dw_k W_k^T and dW = sum_k h_k^T dw_k, one product per distinct W (resp. h): the
    # terms of a second derivative share them, and each product is a matrix product per block
    dh = _sum([ops.matmul(v, ops.transpose(m)) for m, v in _by_tensor([(rows[k][2], v) for k, v in d[2] if picks[k][2]])])
    dW = _sum([ops.matmul(ops.transpose(h), v if new is None else v * new)
               for h, v in _by_tensor([(rows[k][1], v) for k, v in d[2] if picks[k][3]])])
    return out + [ops.zeros_like(rows[0][1]) if dh is None else dh, ops.zeros_like(rows[0][2]) if dW is None else dW]


def coupled_scatter(T, x, e, w, senders, receivers, num_nodes, chunk=None, weight_matrix=None):
    """``segment_sum(coupled_native(T, x[senders], e, w), receivers, num_nodes)`` -> ``[N,
    T.native_dim]``, edges taken ``chunk`` at a time.

    ``x [N, dim1]`` (ir_mul, one row per node), ``e [E, dim2]``, ``w [E, numel]``; with
    ``weight_matrix`` ``W [H, numel]``, ``w [E, H]`` holds features ``h`` whose product with ``W``
    are the weights (a radial network's last layer: ``h W`` is then computed per block of edges
    and never stored, nor its derivative). Gather, product and sum are one map linear in each of
    ``(x, e, w)`` or ``(x, e, h, W)``, computed in a loop over blocks of ``chunk`` edges that adds
    each block's messages to the node sums in place, with its gradient of every order
    (`_multilinear`) computed the same way (per-edge derivatives written in place into their
    ``[E, ...]`` result): the gathered features, the messages and every other per-edge
    intermediate of the product and its derivatives exist for one block of edges at a time,
    instead of for all edges at once (at 4,000 atoms, 171k edges x 1,120 message components are
    0.77 GB per layer and per derivative). The inputs and the derivatives with respect to them are
    the only edge-sized tensors left. The last block starts ``chunk`` edges before the end and
    leaves out of the sums the edges the previous block had. Up to `KernelOptions.loop_min_edges` edges (when
    their number is known as the program is traced, and while edges x output components stay within
    `KernelOptions.loop_min_values`) are taken at once.
    """
    options = current_kernel_options()
    chunk_arg = chunk
    chunk = options.edge_chunk if chunk is None else int(chunk)
    # feature sizes static (a distribution strategy may have lost them)
    x = ops.reshape(x, (-1, T.irreps_in1.dim))
    e = ops.reshape(e, (-1, T.C.shape[0]))
    if weight_matrix is None:
        w = ops.reshape(w, (-1, T.weight_numel))
        args, n = (x, e, w), 3
    else:
        W = ops.reshape(ops.cast(weight_matrix, x.dtype), (-1, T.weight_numel))
        w = ops.reshape(w, (-1, W.shape[0]))
        args, n = (x, e, w, W), 4
    edge_args = 2  # e and w (or h): the per-edge arguments; W is not per edge
    num_edges = e.shape[0]
    if (chunk_arg is None and num_edges is not None and num_edges <= options.small_graph_edges
            and T.native_dim >= options.wide_message):
        chunk = options.small_graph_chunk
    at_once = num_edges is not None and (num_edges <= chunk or (
        num_edges <= options.loop_min_edges and num_edges * T.irreps_out.dim <= options.loop_min_values))
    if chunk <= 0 or _executor_forms() or at_once:
        compact = _compact(num_edges)

        def forward_sum(terms):
            msg = _stacked_forward(T, *_on_edges([t[0] for t in terms], senders, [t[1:] for t in terms]), compact)
            return ops.segment_sum(msg, receivers, num_segments=num_nodes)

        def partials_sum(g, terms, picks):
            rows = [t[1:] for t in terms]
            d = _stacked_partials(T, g, *_on_edges([t[0] for t in terms], senders, rows), receivers, rows, picks,
                                  compact=compact)
            return [ops.segment_sum(d[0], senders, num_segments=num_nodes)] + list(d[1:])

        return _multilinear(forward_sum, partials_sum, n)(*args)

    if num_edges is None:
        # known when the program runs: padded to whole blocks (the padding's derivatives are cut
        # off by the concatenation's own gradient)
        senders, receivers, e, w = _pad_edges([senders, receivers, e, w], ops.shape(e)[0], chunk)
        num_edges = ops.shape(e)[0]
        args = (x, e, w) + tuple(args[3:])
    steps = (num_edges + chunk - 1) // chunk
    # rows of the last block that the block before it had (none once padded to whole blocks)
    overlap = steps * chunk - num_edges if isinstance(num_edges, int) else 0

    def block(i, tensors):
        """Block ``i``: its start, each tensor's rows there, and 1 on the edges it adds to the sums."""
        start = ops.minimum(i * chunk, num_edges - chunk)
        # (-1: a size TensorFlow left unknown in a gradient, all of it)
        rows = [ops.slice(t, (start,) + (0,) * (len(t.shape) - 1), (chunk,) + tuple(-1 if d is None else d for d in t.shape[1:]))
                for t in tensors]
        new = ops.expand_dims(ops.cast(ops.arange(chunk) + start >= i * chunk, x.dtype), 1)
        return start, rows, new

    def edge_tensors(terms):
        """The distinct per-edge arguments of the terms (each is sliced once per block, and terms
        sharing one share its slice) and where each term's are among them."""
        return _distinct([u for t in terms for u in t[1 : 1 + edge_args]])

    def edge_rows(terms, rows, index):
        """Per term its arguments on the block: sliced per-edge ones, then the others whole."""
        out, k = [], 0
        for t in terms:
            out.append(tuple(rows[j] for j in index[k : k + edge_args]) + tuple(t[1 + edge_args :]))
            k += edge_args
        return out

    def forward_sum(terms):
        edge_ts, index = edge_tensors(terms)

        def step(i, acc):
            _, (si, ri, *rows), new = block(i, [senders, receivers] + edge_ts)
            msg = _stacked_forward(T, *_on_edges([t[0] for t in terms], si, edge_rows(terms, rows, index)))
            return backend.scatter_add(acc, ri, msg * new)

        return ops.fori_loop(0, steps, step, ops.zeros((num_nodes, T.native_dim), dtype=x.dtype))

    def add_partials(carry, d, si, i, start, new):
        """The partials of a block added to (node sums) or written as block ``i`` of (per edge)
        their results (`backend.write_block_rows`: no op that only XLA runs, as served graphs need)."""
        out = [backend.scatter_add(carry[0], si, d[0] * new)]
        out += [backend.write_block_rows(c, i, start, dk) for c, dk in zip(carry[1:3], d[1:3])]
        if n == 4:  # dW: this block's new edges only
            out.append(carry[3] + d[3])
        return tuple(out)

    def partials_init():
        return ((ops.zeros((num_nodes, T.irreps_in1.dim), dtype=x.dtype),)
                + tuple(backend.block_rows(a, steps, chunk) for a in args[1:3]) + tuple(ops.zeros_like(a) for a in args[3:]))

    def partials_result(carry):
        """The per-edge partials' blocks stacked, the last block's repeated first edges left out."""
        return [carry[0]] + [backend.stacked_block_rows(c, chunk, overlap) for c in carry[1:3]] + list(carry[3:])

    def partials_sum(g, terms, picks):
        edge_ts, index = edge_tensors(terms)

        def step(i, carry):
            start, (si, ri, *rows), new = block(i, [senders, receivers] + edge_ts)
            er = edge_rows(terms, rows, index)
            d = _stacked_partials(T, g, *_on_edges([t[0] for t in terms], si, er), ri, er, picks, new)
            return add_partials(carry, d, si, i, start, new)

        return partials_result(ops.fori_loop(0, steps, step, partials_init()))

    def joint_sum(g, terms, picks):
        """``(forward_sum(terms), partials_sum(g, terms, picks))`` in one loop: the blocks' slices,
        gathers and path weights ``h W``, which the two share, are formed once per block."""
        edge_ts, index = edge_tensors(terms)

        def step(i, carry):
            start, (si, ri, *rows), new = block(i, [senders, receivers] + edge_ts)
            er = edge_rows(terms, rows, index)
            xs, ew = _on_edges([t[0] for t in terms], si, er)  # formed once for both
            msg = _stacked_forward(T, xs, ew)
            d = _stacked_partials(T, g, xs, ew, ri, er, picks, new)
            return (backend.scatter_add(carry[0], ri, msg * new),) + add_partials(carry[1:], d, si, i, start, new)

        out = ops.fori_loop(0, steps, step, (ops.zeros((num_nodes, T.native_dim), dtype=x.dtype),) + partials_init())
        return out[0], partials_result(out[1:])

    return _multilinear(forward_sum, partials_sum, n, joint_sum)(*args)


def coupled_tensor_product(T, x1, x2, w, shared_weights):
    """``[Z, dim1] x [Z, dim2]`` -> ``[Z, dim_out]``, inputs and output in e3nn's mul_ir layout."""
    return T.to_mul_ir(coupled_native(T, to_ir_mul(x1, T.irreps_in1), x2, w, shared_weights))
