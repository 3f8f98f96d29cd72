"""Generalised Clebsch-Gordan coefficients of a nu-fold tensor product (MACE's ``U`` tensors)."""

import functools

import numpy as np

from ._irreps import Irrep, Irreps
from ._wigner import wigner_3j

# Wigner 3j triples (l1, l2, l3), all l <= 10, whose sign in e3nn 0.4.4 - the version mace-torch
# pins, so every trained MACE model - is the opposite of e3nn 0.6's (kerase3's); only triples with
# l1 + l2 + l3 odd differ. Made by tests/reference/e3nn_044_wigner_signs.py.
E3NN_04_FLIPS = frozenset([(1, 2, 2), (1, 3, 3), (1, 4, 4), (1, 5, 5), (1, 6, 6), (1, 7, 7), (1, 8, 8), (1, 9, 9), (1, 10, 10), (2, 1, 2), (2, 2, 1), (3, 1, 3), (3, 3, 1), (3, 4, 6), (3, 5, 7), (3, 6, 4), (3, 6, 8), (3, 7, 5), (3, 7, 9), (3, 8, 6), (3, 8, 10), (3, 9, 7), (3, 10, 8), (4, 1, 4), (4, 3, 6), (4, 4, 1), (4, 4, 5), (4, 5, 4), (4, 5, 6), (4, 6, 3), (4, 6, 5), (4, 6, 7), (4, 7, 6), (4, 7, 8), (4, 8, 7), (4, 8, 9), (4, 9, 8), (4, 9, 10), (4, 10, 9), (5, 1, 5), (5, 3, 7), (5, 4, 4), (5, 4, 6), (5, 5, 1), (5, 5, 5), (5, 6, 4), (5, 6, 6), (5, 6, 10), (5, 7, 3), (5, 7, 7), (5, 8, 8), (5, 9, 9), (5, 10, 6), (5, 10, 10), (6, 1, 6), (6, 3, 4), (6, 3, 8), (6, 4, 3), (6, 4, 5), (6, 4, 7), (6, 5, 4), (6, 5, 6), (6, 5, 10), (6, 6, 1), (6, 6, 5), (6, 6, 9), (6, 7, 4), (6, 7, 10), (6, 8, 3), (6, 9, 6), (6, 10, 5), (6, 10, 7), (7, 1, 7), (7, 3, 5), (7, 3, 9), (7, 4, 6), (7, 4, 8), (7, 5, 3), (7, 5, 7), (7, 6, 4), (7, 6, 10), (7, 7, 1), (7, 7, 5), (7, 7, 9), (7, 8, 4), (7, 8, 10), (7, 9, 3), (7, 9, 7), (7, 10, 6), (7, 10, 8), (8, 1, 8), (8, 3, 6), (8, 3, 10), (8, 4, 7), (8, 4, 9), (8, 5, 8), (8, 6, 3), (8, 7, 4), (8, 7, 10), (8, 8, 1), (8, 8, 5), (8, 8, 9), (8, 9, 4), (8, 9, 8), (8, 9, 10), (8, 10, 3), (8, 10, 7), (8, 10, 9), (9, 1, 9), (9, 3, 7), (9, 4, 8), (9, 4, 10), (9, 5, 9), (9, 6, 6), (9, 7, 3), (9, 7, 7), (9, 8, 4), (9, 8, 8), (9, 8, 10), (9, 9, 1), (9, 9, 5), (9, 9, 9), (9, 10, 4), (9, 10, 8), (9, 10, 10), (10, 1, 10), (10, 3, 8), (10, 4, 9), (10, 5, 6), (10, 5, 10), (10, 6, 5), (10, 6, 7), (10, 7, 6), (10, 7, 8), (10, 8, 3), (10, 8, 7), (10, 8, 9), (10, 9, 4), (10, 9, 8), (10, 9, 10), (10, 10, 1), (10, 10, 5), (10, 10, 9)])
_FLIPS_LMAX = 10


def wigner_3j_e3nn_04(l1, l2, l3):
    """`wigner_3j` with e3nn 0.4.4's signs (mace-torch's convention)."""
    if (l1 + l2 + l3) % 2 and max(l1, l2, l3) > _FLIPS_LMAX:
        raise ValueError(f"wigner_3j_e3nn_04: e3nn 0.4.4's sign of ({l1}, {l2}, {l3}) is tabulated up to l = {_FLIPS_LMAX}")
    c = wigner_3j(l1, l2, l3)
    return -c if (l1, l2, l3) in E3NN_04_FLIPS else c


def _coupled_paths(irreps, nu, filter_ir_mid, w3j, last_ir=None):
    """Every way of coupling ``nu`` copies of ``irreps`` left to right, as ``(ir, C)`` with
    ``C [ir.dim, irreps.dim, ..., irreps.dim]``, stably sorted by ``(l, p)`` at each step (the order
    of MACE's ``U_matrix_real``). With ``last_ir`` only the paths ending in it are built."""
    if nu == 1:
        eye = np.eye(irreps.dim)
        out, i = [], 0
        for mul, ir in irreps:
            for _ in range(mul):
                if last_ir is None or ir == last_ir:
                    out.append((ir, eye[i : i + ir.dim]))
                i += ir.dim
        return out
    left = _coupled_paths(irreps, nu - 1, filter_ir_mid, w3j)
    dims_left = (irreps.dim,) * (nu - 1)
    out = []
    for ir_left, c_left in left:
        i = 0
        for mul, ir in irreps:
            for ir_out in ir_left * ir:
                if (filter_ir_mid is not None and ir_out not in filter_ir_mid) or (last_ir is not None and ir_out != last_ir):
                    continue
                c = w3j(ir_out.l, ir_left.l, ir.l) * np.sqrt(ir_out.dim)
                c = np.einsum("jk,ijl->ikl", c_left.reshape(c_left.shape[0], -1), c)
                c = c.reshape((ir_out.dim,) + dims_left + (ir.dim,))
                for u in range(mul):
                    e = np.zeros((ir_out.dim,) + dims_left + (irreps.dim,))
                    e[..., i + u * ir.dim : i + (u + 1) * ir.dim] = c
                    out.append((ir_out, e))
            i += mul * ir.dim
    return sorted(out, key=lambda t: (t[0].l, t[0].p))


@functools.lru_cache(maxsize=None)
def _basis(irreps, nu, ir_out, filter_ir_mid, convention):
    w3j = wigner_3j_e3nn_04 if convention == "mace" else wigner_3j
    paths = _coupled_paths(Irreps(irreps), nu, filter_ir_mid, w3j, last_ir=Irrep(ir_out))
    if not paths:
        return None
    u = np.stack([c for _, c in paths], axis=-1)
    u.setflags(write=False)
    return u


def product_basis(irreps, correlation, ir_out, filter_ir_mid=None, convention="e3nn"):
    r"""The coupling tensors of a ``correlation``-fold product of ``irreps`` into ``ir_out``.

    ``U[m, i_1, ..., i_nu, k]``: for each way ``k`` of coupling the copies left to right
    (``((x_1 x x_2) -> ir) x x_3 -> ...``), the Clebsch-Gordan tensor of the whole path with
    "component" normalisation. ``sum_{i} U[m, i_1..i_nu, k] x_{i_1} ... x_{i_nu}`` is then an
    equivariant polynomial of degree ``nu`` transforming as ``ir_out``; these are the ``U``
    matrices of MACE's symmetric contraction (``mace.tools.cg.U_matrix_real`` without
    cuEquivariance; order of ``k`` and values equal, with a leading axis of size 1 for scalars).

    Args:
        irreps: `Irreps` of one copy (usually ``0e + 1o + 2e + ...``, one of each).
        correlation: `int` >= 1, the number of copies.
        ir_out: `Irrep`.
        filter_ir_mid: optional list of irreps allowed at every coupling step (MACE keeps
            ``(l, (-1)^l)``, ``l < 12``, at correlation 4).
        convention: ``"e3nn"`` (kerase3's and e3nn 0.6's Wigner 3j) or ``"mace"`` (e3nn 0.4.4's
            signs, which mace-torch uses: some paths with ``l1 + l2 + l3`` odd change sign).

    Returns:
        read-only `np.ndarray` ``[ir_out.dim, irreps.dim, ..., irreps.dim, K]``, or None when no
        path reaches ``ir_out``.

    Example:
        >>> product_basis("0e + 1o", 2, "0e").shape
        (1, 4, 4, 2)
        >>> product_basis("0e + 1o", 1, "1e") is None
        True
    """
    if convention not in ("e3nn", "mace"):
        raise ValueError(f"product_basis: convention must be 'e3nn' or 'mace'. Received: convention={convention!r}")
    correlation = int(correlation)
    if correlation < 1:
        raise ValueError(f"product_basis: correlation must be >= 1. Received: correlation={correlation}")
    filt = None if filter_ir_mid is None else tuple(sorted(Irrep(ir) for ir in filter_ir_mid))
    return _basis(str(Irreps(irreps)), correlation, str(Irrep(ir_out)), filt, convention)
