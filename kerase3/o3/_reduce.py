"""Tensors with index symmetries reduced into irreps (e3nn's ``ReducedTensorProducts``), numpy.

A formula such as ``"ijkl=jikl=klij"`` lists index permutations (optionally with a ``-`` sign)
under which the tensor is unchanged. The permutations generate a group; the tensors invariant
under it form a subspace of the product of the indices' representations. That subspace is
decomposed into irreps by chains of Clebsch-Gordan products, with e3nn's choice of basis inside
each multiplicity (the same projector, orthonormalised in the same order), so the change of basis
equals e3nn's.
"""

import functools
import itertools

import numpy as np

from ._irreps import Irrep, Irreps
from ._wigner import wigner_3j

__all__ = ["ReducedTensorProducts", "germinate_formulas", "reduce_permutation"]


def _compose(p1, p2):
    return tuple(p1[p2[i]] for i in range(len(p1)))


def _inverse(p):
    return tuple(p.index(i) for i in range(len(p)))


def germinate_formulas(formula):
    """``(indices, group)``: the first index string and the set of ``(sign, permutation)`` the
    formula generates (closed under composition and inverse)."""
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"ReducedTensorProducts: formula must be a non-empty string. Received: {formula!r}")
    parts = [p.strip() for p in formula.split("=")]
    formulas = [(-1 if f.startswith("-") else 1, f.lstrip("-")) for f in parts]
    s0, f0 = formulas[0]
    if s0 != 1 or not f0 or not f0.isalpha():
        raise ValueError(f"ReducedTensorProducts: the first term of {formula!r} must be letters without a sign")
    for _, f in formulas:
        if len(set(f)) != len(f) or set(f) != set(f0) or len(f) != len(f0):
            raise ValueError(f"ReducedTensorProducts: {f!r} is not a permutation of {f0!r} in formula {formula!r}")
    group = {(s, tuple(f.index(i) for i in f0)) for s, f in formulas}
    while True:
        n = len(group)
        group |= {(s, _inverse(p)) for s, p in group}
        group |= {(s1 * s2, _compose(p1, p2)) for s1, p1 in group for s2, p2 in group}
        if len(group) == n:
            return f0, group


def reduce_permutation(f0, group, dims):
    """Orthonormal basis ``(d_sym, *dims)`` of the tensors invariant under the signed permutations."""
    dims = [dims[i] for i in f0]
    full = list(itertools.product(*(range(d) for d in dims)))
    orbits = set()
    for x in full:
        xs = {(s, tuple(x[i] for i in p)) for s, p in group}
        if (-1, x) not in xs:  # an entry equal to minus itself is zero
            orbits.add(frozenset({frozenset(xs), frozenset({(-s, y) for s, y in xs})}))
    orbits = sorted(sorted(sorted(xs) for xs in orbit) for orbit in orbits)
    Q = np.zeros((len(orbits), len(full)))
    strides = np.cumprod([1] + dims[::-1])[::-1][1:]
    for i, orbit in enumerate(orbits):
        xs = max(orbit, key=lambda xs: sum(s for s, _ in xs))
        for s, e in xs:
            Q[i, int(np.dot(e, strides))] = s / len(xs) ** 0.5
    return Q.reshape(len(orbits), *dims)


def _wigner_nj(irrepss, filter_ir_mid=None):
    """Every chain of Clebsch-Gordan products of the inputs: list of ``(ir, path, C)`` with
    ``C (ir.dim, *dims)``, sorted by irrep (stable), in e3nn's order."""
    if len(irrepss) == 1:
        (irreps,) = irrepss
        eye = np.eye(irreps.dim)
        out, i = [], 0
        for mul, ir in irreps:
            for _ in range(mul):
                out.append((ir, ("in", 0, i), eye[i:i + ir.dim]))
                i += ir.dim
        return out
    *left, right = irrepss
    out = []
    for ir_left, path_left, C_left in _wigner_nj(left, filter_ir_mid):
        i = 0
        for mul, ir in right:
            for ir_out in ir_left * ir:
                if filter_ir_mid is not None and ir_out not in filter_ir_mid:
                    continue
                C = wigner_3j(ir_out.l, ir_left.l, ir.l) * ir_out.dim**0.5
                C = np.einsum("jk,ijl->ikl", C_left.reshape(C_left.shape[0], -1), C)
                C = C.reshape((ir_out.dim,) + tuple(x.dim for x in left) + (ir.dim,))
                for u in range(mul):
                    E = np.zeros((ir_out.dim,) + tuple(x.dim for x in left) + (right.dim,))
                    sl = slice(i + u * ir.dim, i + (u + 1) * ir.dim)
                    E[..., sl] = C
                    out.append((ir_out, ("tp", path_left, ir, ir_out, sl.start), E))
            i += mul * ir.dim
    return sorted(out, key=lambda x: (x[0].l, x[0].p))


def _orthonormalize(vectors, eps):
    final = []
    for x in vectors:
        x = x.copy()
        for y in final:
            x = x - np.dot(x, y) * y
        norm = np.linalg.norm(x)
        if norm > 2 * eps:
            x = x / norm
            x[np.abs(x) < eps] = 0
            x = x * np.sign(x[np.nonzero(x)[0][0]])
            final.append(x)
    return np.array(final).reshape(len(final), vectors.shape[1])


@functools.lru_cache(maxsize=64)
def _reduce(formula, irreps_items, filter_ir_out, filter_ir_mid, eps):
    irreps = {k: Irreps(v) for k, v in irreps_items}
    f0, group = germinate_formulas(formula)
    for k in irreps:
        if len(k) != 1 or not k.isalpha():
            raise ValueError(f"ReducedTensorProducts: unexpected keyword {k!r} (one letter per index)")
    for _, p in group:
        f = "".join(f0[i] for i in p)
        for i, j in zip(f0, f):
            if i in irreps and j in irreps and irreps[i] != irreps[j]:
                raise ValueError(f"ReducedTensorProducts: indices {i} and {j} are exchanged by {formula!r} but have "
                                 f"different irreps ({irreps[i]} and {irreps[j]})")
            if i in irreps:
                irreps[j] = irreps[i]
            if j in irreps:
                irreps[i] = irreps[j]
    for i in f0:
        if i not in irreps:
            raise ValueError(f"ReducedTensorProducts: index {i} of {formula!r} has no irreps. Received: {dict(irreps_items)}")
    for i in irreps:
        if i not in f0:
            raise ValueError(f"ReducedTensorProducts: index {i} has irreps but is not in formula {formula!r}")
    irreps_in = [irreps[i] for i in f0]
    base_perm = reduce_permutation(f0, group, {i: irreps[i].dim for i in f0})
    P = base_perm.reshape(len(base_perm), -1)
    PP = P @ P.T
    by_ir = {}
    for ir, _path, C in _wigner_nj(irreps_in, filter_ir_mid):
        if filter_ir_out is None or ir in filter_ir_out:
            by_ir.setdefault(ir, []).append(C)
    change, irreps_out = [], []
    for ir, Cs in by_ir.items():
        mul = len(Cs)
        base_o3 = np.stack(Cs)  # (u, ir.dim, *dims)
        R = base_o3.reshape(mul, ir.dim, -1)[:, 0]  # (u, omega)
        RR, RP = R @ R.T, R @ P.T
        prob = np.block([[RR, -RP], [-RP.T, PP]])
        w, v = np.linalg.eigh(prob)
        X = v[:, w < eps][:mul].T  # solutions x . R = y . P, the multiplicity part
        for x in _orthonormalize(X.T @ X, eps):
            C = np.einsum("u,ui...->i...", x, base_o3)
            C = C * (ir.dim / np.sum(C**2)) ** 0.5
            change.append(C)
            irreps_out.append((1, ir))
    dims = tuple(x.dim for x in irreps_in)
    Q = np.concatenate(change) if change else np.zeros((0,) + dims)
    return f0, tuple(str(x) for x in irreps_in), str(Irreps(irreps_out).simplify()), Q


class ReducedTensorProducts:
    """The irreps of tensors with index symmetries, and the change of basis to them.

    Args:
        formula: e.g. ``"ij=ji"``, ``"ij=-ji"``, ``"ijk=jki=kij"``, ``"ijkl=jikl=klij"``.
        filter_ir_out: optional irreps to keep.
        filter_ir_mid: optional irreps allowed in the intermediate products.
        eps: threshold of the null-space and orthonormalisation.
        **irreps: the irreps of each index (``i="1o"``); indices exchanged by the formula
            share their irreps, so giving one of them is enough.

    Attributes:
        irreps_in: list of `Irreps`, one per index.
        irreps_out: `Irreps` (simplified).
        change_of_basis: ``(irreps_out.dim, *dims)`` numpy array; ``features = Q . tensor``
            (contracting all indices) and ``tensor = Q^T . features`` on the symmetric subspace.
    """

    def __init__(self, formula, filter_ir_out=None, filter_ir_mid=None, eps=1e-9, **irreps):
        f_out = None if filter_ir_out is None else tuple(sorted({Irrep(ir) for ir in filter_ir_out}, key=lambda r: (r.l, r.p)))
        f_mid = None if filter_ir_mid is None else tuple(sorted({Irrep(ir) for ir in filter_ir_mid}, key=lambda r: (r.l, r.p)))
        items = tuple(sorted((k, str(Irreps(v))) for k, v in irreps.items()))
        f0, irreps_in, irreps_out, Q = _reduce(formula, items, f_out, f_mid, float(eps))
        self.formula = formula
        self.indices = f0
        self.irreps_in = [Irreps(x) for x in irreps_in]
        self.irreps_out = Irreps(irreps_out)
        self.change_of_basis = Q.copy()

    def __call__(self, *xs):
        """Features ``(..., irreps_out.dim)`` of ``x1 (x) x2 (x) ...`` (numpy, one ``(..., dim)`` array per index)."""
        if len(xs) != len(self.indices):
            raise ValueError(f"ReducedTensorProducts: {len(self.indices)} inputs expected. Received: {len(xs)}")
        letters = "abcdefghijklmnopqrstuvwxy"[: len(xs)]
        spec = "z" + letters + "," + ",".join(f"...{c}" for c in letters) + "->...z"
        return np.einsum(spec, self.change_of_basis, *[np.asarray(x) for x in xs])

    def __repr__(self):
        return f"ReducedTensorProducts({self.formula!r}, in: {' x '.join(map(str, self.irreps_in))}, out: {self.irreps_out})"
