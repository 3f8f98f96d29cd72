import keras
import numpy as np
from keras import ops

from ..o3 import Irreps
from ..ops.layout import from_blocks, split_sizes, to_blocks
from ..ops.activations import activation_parity, normalize2mom
from ..ops.plan import split_to_match
from .base import IrrepsLayer, irreps_arg


def _check_scalar_acts(irreps, acts, layer, arg):
    """Output irreps of scalars after their activations (e3nn's parity rule)."""
    if len(acts) != len(irreps):
        raise ValueError(f"{layer}: {arg} needs one activation per block of {irreps}. Received: {acts!r}")
    out = []
    for (mul, ir), act in zip(irreps, acts):
        if ir.l != 0:
            raise ValueError(f"{layer}: {arg} must hold only scalars (l=0). Received: {irreps}")
        if act is None:
            out.append((mul, ir))
            continue
        p_act = activation_parity(act)
        p_out = p_act if ir.p == -1 else ir.p
        if p_out == 0:
            raise ValueError(
                f"{layer}: the activation {act!r} on odd scalars {mul}x{ir} is neither even nor odd, "
                f"so the output would not have a parity. Received: {arg}={irreps}"
            )
        out.append((mul, (0, p_out)))
    return Irreps(out)


def _apply_scalar_acts(blocks):
    """Each ``(block, (fn, normalisation constant))`` -> ``fn(block) * constant``."""
    parts = []
    for b, (fn, cst) in blocks:
        if fn is not None:
            b = fn(b)
            if cst != 1.0:
                b = b * cst
        parts.append(b)
    return parts


def _as_list(acts, n):
    if acts is None or isinstance(acts, str) or callable(acts):
        return [acts] * n
    return list(acts)


@keras.saving.register_keras_serializable(package="kerase3")
class Gate(IrrepsLayer):
    """Gate nonlinearity (e3nn's ``nn.Gate``): activations on scalars, and each gated irrep
    multiplied by an activated gate scalar, ``sigma(g) * x``.

    Activations are rescaled to unit second moment (``normalize2mom``) and checked for
    parity: an odd scalar needs an even or odd activation.

    Args:
        irreps_scalars: scalars passed through ``act_scalars``.
        act_scalars: activation name (or list, one per block of ``irreps_scalars``).
        irreps_gates: scalars, one per gated irrep copy, passed through ``act_gates``.
        act_gates: activation name (or list).
        irreps_gated: the irreps that are gated.

    Input shape:
        `(..., irreps_in.dim)` with ``irreps_in`` the sorted, simplified concatenation
        ``(irreps_scalars + irreps_gates + irreps_gated)``, e3nn's order (see ``layer.irreps_in``).
    Output shape:
        `(..., irreps_out.dim)`, ``irreps_out = irreps_scalars + irreps_gated`` (parities after
        the activations).

    Example:
        >>> gate = Gate("4x0e", "silu", "2x0e", "sigmoid", "2x1o")
        >>> str(gate.irreps_in), str(gate.irreps_out), tuple(gate(np.ones((3, 12))).shape)
        ('6x0e+2x1o', '4x0e+2x1o', (3, 10))
    """

    def __init__(self, irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated, **kwargs):
        super().__init__(**kwargs)
        # blocks as given (e3nn's activation lists have one entry per block, zero multiplicities included)
        scalars = irreps_arg(irreps_scalars, "Gate", "irreps_scalars")
        gates = irreps_arg(irreps_gates, "Gate", "irreps_gates")
        gated = irreps_arg(irreps_gated, "Gate", "irreps_gated")
        if len(gates) > 0 and gates.lmax > 0:
            raise ValueError(f"Gate: irreps_gates must hold only scalars (l=0). Received: irreps_gates={gates}")
        if len(scalars) > 0 and scalars.lmax > 0:
            raise ValueError(f"Gate: irreps_scalars must hold only scalars (l=0). Received: irreps_scalars={scalars}")
        if gates.num_irreps != gated.num_irreps:
            raise ValueError(
                f"Gate: there must be one gate per gated irrep copy. Received: irreps_gates={gates} "
                f"({gates.num_irreps}), irreps_gated={gated} ({gated.num_irreps})"
            )
        self.set_irreps(irreps_scalars=scalars, irreps_gates=gates, irreps_gated=gated)
        self.act_scalars, self.act_gates = act_scalars, act_gates
        acts_s, acts_g = _as_list(act_scalars, len(scalars)), _as_list(act_gates, len(gates))
        scalars_out = _check_scalar_acts(scalars, acts_s, "Gate", "irreps_scalars")
        gates_out = _check_scalar_acts(gates, acts_g, "Gate", "irreps_gates")
        self._fns_s = [normalize2mom(a) for a in acts_s]
        self._fns_g = [normalize2mom(a) for a in acts_g]
                # input layout: e3nn's sorted concatenation; remember where each piece sits
        cat = scalars + gates + gated
        srt = cat.sort()
        self.irreps_in = srt.irreps.simplify()
        starts, j = {}, 0
        for new_pos, old in enumerate(srt.inv):
            starts[old] = j
            j += cat[old].dim
        self._pieces = [
            [(starts[k], cat[k].dim) for k in range(0, len(scalars))],
            [(starts[k], cat[k].dim) for k in range(len(scalars), len(scalars) + len(gates))],
            [(starts[k], cat[k].dim) for k in range(len(scalars) + len(gates), len(cat))],
        ]
        # like e3nn's ElementwiseTensorProduct(gated, gates): blocks split where either side splits
        g1, g2 = split_to_match(gated.simplify(), gates_out.simplify())
        self._gated_out = Irreps([(m1, (ir1.l, ir1.p * ir2.p)) for (m1, ir1), (_, ir2) in zip(g1, g2)])
        self.irreps_out = scalars_out + self._gated_out
        self._segs = self._segments()

    def _segments(self):
        """Per block of ``irreps_in``: its channel segments in order, each ``(role, index, copies)``
        with role ``"s"`` (scalar block ``index``), ``"g"`` (gate block ``index``) or ``"x"`` (a run of
        copies of gated output block ``index`` of ``irreps_out``)."""
        starts = np.cumsum([0] + [mul * ir.dim for mul, ir in self.irreps_in])
        found = []  # (flat start, role, index, copies)
        for role, group in (("s", self._pieces[0]), ("g", self._pieces[1])):
            for k, (a, n) in enumerate(group):
                if n > 0:
                    found.append((a, role, k, n))
        # gated copies, in order, cut where a block of irreps_gated or of the output ends
        copies = [(a + c * ir.dim, ir.dim) for (mul, ir), (a, _) in zip(self.irreps_gated, self._pieces[2]) for c in range(mul)]
        c0 = 0
        n_sc = len(self.irreps_out) - len(self._gated_out)
        for j, (m1, _) in enumerate(self._gated_out):
            run = None
            for a, d in copies[c0:c0 + m1]:
                if run is not None and a == run[0] + run[3] * d:
                    run[3] += 1
                else:
                    if run is not None:
                        found.append(tuple(run))
                    run = [a, "x", n_sc + j, 1]
            if run is not None:
                found.append(tuple(run))
            c0 += m1
        per_block = [[] for _ in self.irreps_in]
        for a, role, k, n in sorted(found):
            b = int(np.searchsorted(starts, a, side="right")) - 1
            per_block[b].append((role, k, n))
        for b, (mul, _) in enumerate(self.irreps_in):
            if sum(n for _, _, n in per_block[b]) != mul:
                raise ValueError(f"Gate: the pieces of block {b} of {self.irreps_in} do not tile it")
        return tuple(tuple(p) for p in per_block)

    def call(self, x):
        self.check_input(x, self.irreps_in)
        batch = ops.shape(x)[:-1]
        x2 = ops.reshape(x, (-1, self.irreps_in.dim))
        out = self.call_blocks(to_blocks(x2, self.irreps_in))
        return from_blocks(out, self.irreps_out, batch, x2)

    def call_blocks(self, blocks):
        """The gate on features split into ir_mul blocks (`kerase3.ops.layout.to_blocks`): one
        ``[Z, 2l+1, mul]`` per block of ``irreps_in`` -> one per block of ``irreps_out`` (None where
        ``mul = 0``). A gated block is multiplied by its gates broadcast over its components."""
        scalars, gates, gated = {}, [], {}
        for block, pieces in zip(blocks, self._segs):
            if not pieces:
                continue
            parts = split_sizes(block, [n for _, _, n in pieces]) if len(pieces) > 1 else [block]
            for (role, k, _), t in zip(pieces, parts):
                if role == "s":
                    scalars[k] = t
                elif role == "g":
                    gates.append((k, t))
                else:
                    gated.setdefault(k, []).append(t)
        out = [None] * len(self.irreps_out)
        n_sc = len(self.irreps_out) - len(self._gated_out)
        for k, t in scalars.items():
            out[k] = _apply_scalar_acts([(t, self._fns_s[k])])[0]
        if gated:
            g = _apply_scalar_acts([(t, self._fns_g[k]) for k, t in sorted(gates, key=lambda kt: kt[0])])
            g = g[0] if len(g) == 1 else ops.concatenate(g, axis=-1)
            gs = split_sizes(g, [m for m, _ in self._gated_out])
            for j in range(len(self._gated_out)):
                ts = gated.get(n_sc + j)
                if ts:
                    t = ts[0] if len(ts) == 1 else ops.concatenate(ts, axis=-1)
                    out[n_sc + j] = t * gs[j]
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(act_scalars=self.act_scalars, act_gates=self.act_gates)
        return config

    def __repr__(self):
        return f"Gate({self.irreps_in} -> {self.irreps_out})"
