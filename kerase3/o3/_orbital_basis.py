"""Atomic-orbital bases: shells per element, AO order conventions, rotation of orbital matrices.

An `OrbitalBasis` lists the shells (angular momenta, in AO order) of every element and the
convention of the quantum-chemistry code that ordered them. A shell of degree ``l`` carries the
irrep ``(l, (-1)**l)``. kerase3 (e3nn) orders the ``2l+1`` functions of a shell as e3nn's real
spherical harmonics (``l = 1`` is ``(x, y, z)``, ``y`` the polar axis). Codes that use ``z`` as
polar axis order their real harmonics ``m = -l..l``; those functions are e3nn's evaluated on
``(y, z, x)``-permuted vectors, i.e. ``C_l = D_l(P)`` with ``P = eye(3)[[1, 2, 0]]`` (a proper
rotation). Conventions:

- ``"e3nn"``: e3nn's order for every l.
- ``"pyscf"``: PySCF's real spherical order: p shells ``(px, py, pz)`` (= e3nn's ``l = 1``),
  ``m = -l..l`` for ``l >= 2`` (d: ``dxy, dyz, dz2, dxz, dx2-y2``).
- ``"orca"``: ORCA's order ``m = 0, +1, -1, +2, -2, ...`` (p: ``pz, px, py``; d: ``dz2, dxz,
  dyz, dx2-y2, dxy``) with ORCA's sign flips of the ``|m| >= 3`` functions (f and g shells).

For every convention ``AO = C_l @ e3nn`` with an orthogonal ``C_l``, and a matrix ``F`` between
AOs of a molecule rotated by ``R`` (proper or improper) is ``D F D^T`` with
``D = blockdiag(C_l D_l(R) C_l^T)`` (`OrbitalBasis.rotation_matrix`).
"""

import functools

import numpy as np

from ._irreps import Irrep, Irreps

__all__ = ["OrbitalBasis", "CONVENTIONS", "shell_change_of_basis"]

CONVENTIONS = ("e3nn", "pyscf", "orca")
_P = np.eye(3)[[1, 2, 0]]


@functools.lru_cache(maxsize=None)
def _m_ordered(l):
    """e3nn -> real harmonics with z polar axis, m = -l..l."""
    return Irrep(l, (-1) ** l).D_from_matrix(_P)


@functools.lru_cache(maxsize=None)
def _shell_c(l, convention):
    if convention == "e3nn" or l == 0:
        return np.eye(2 * l + 1)
    if convention == "pyscf":
        return np.eye(3) if l == 1 else _m_ordered(l)
    if convention == "orca":
        order = [l] + [l + s * m for m in range(1, l + 1) for s in (1, -1)]  # indices of m = 0, +1, -1, ...
        signs = np.array([-1.0 if abs(i - l) >= 3 else 1.0 for i in order])
        return signs[:, None] * _m_ordered(l)[order]
    raise ValueError(f"OrbitalBasis: convention must be one of {CONVENTIONS}. Received: convention={convention!r}")


def shell_change_of_basis(l, convention):
    """``C_l`` (``(2l+1, 2l+1)``, orthogonal): a shell's AO vector in ``convention`` is ``C_l @ x_e3nn``."""
    if convention not in CONVENTIONS:
        raise ValueError(f"OrbitalBasis: convention must be one of {CONVENTIONS}. Received: convention={convention!r}")
    return _shell_c(int(l), convention).copy()


class OrbitalBasis:
    """Shells per element in AO order, and the AO-order convention.

    Args:
        shells: dict ``{atomic_number: [l, l, ...]}`` in AO order (def2-SVP oxygen is
            ``[0, 0, 0, 1, 1, 2]``).
        convention: ``"e3nn"``, ``"pyscf"`` or ``"orca"``.
        name: optional label (e.g. ``"def2-svp"``).
    """

    def __init__(self, shells, convention="pyscf", name=None):
        if convention not in CONVENTIONS:
            raise ValueError(f"OrbitalBasis: convention must be one of {CONVENTIONS}. Received: convention={convention!r}")
        if not shells:
            raise ValueError("OrbitalBasis: no elements given")
        self.shells = {}
        for z, ls in shells.items():
            if int(z) <= 0:
                raise ValueError(f"OrbitalBasis: atomic numbers must be positive. Received: {z}")
            ls = [int(l) for l in ls]
            if not ls or any(l < 0 for l in ls):
                raise ValueError(f"OrbitalBasis: element {z} needs a non-empty list of l >= 0. Received: {ls}")
            self.shells[int(z)] = ls
        self.convention = convention
        self.name = name

    # -- per element ---------------------------------------------------------------------------------------

    @property
    def species(self):
        return sorted(self.shells)

    def _shells(self, z):
        if int(z) not in self.shells:
            raise ValueError(f"OrbitalBasis: element {int(z)} is not in the basis (elements {self.species})")
        return self.shells[int(z)]

    def n_orbitals(self, z):
        """Number of AOs of element ``z``."""
        return sum(2 * l + 1 for l in self._shells(z))

    def irreps(self, z):
        """Irreps of the AOs of element ``z`` in AO order (``1x0e + 1x0e + 1x1o + ...``)."""
        return Irreps([(1, (l, (-1) ** l)) for l in self._shells(z)])

    @property
    def max_shells(self):
        """The smallest shell list holding every element's shells: for each l, the largest count
        over elements, ordered by l. Heads predict blocks in this layout."""
        counts = {}
        for ls in self.shells.values():
            for l in set(ls):
                counts[l] = max(counts.get(l, 0), ls.count(l))
        return [l for l in sorted(counts) for _ in range(counts[l])]

    def max_layout_index(self, z):
        """For element ``z``: the index in the e3nn-ordered `max_shells` layout of each of its AOs
        (in this basis's AO order)."""
        starts, pos = {}, 0
        for l in self.max_shells:
            starts.setdefault(l, []).append(pos)
            pos += 2 * l + 1
        seen, out = {}, []
        for l in self._shells(z):
            k = seen.get(l, 0)
            seen[l] = k + 1
            out.extend(range(starts[l][k], starts[l][k] + 2 * l + 1))
        return np.array(out, np.int64)

    # -- molecules -----------------------------------------------------------------------------------------

    def n_orbitals_of(self, atomic_numbers):
        return int(sum(self.n_orbitals(z) for z in np.asarray(atomic_numbers).ravel()))

    def orbital_atoms(self, atomic_numbers):
        """The atom index of every AO of a molecule ``(n_ao,)``."""
        return np.concatenate([np.full(self.n_orbitals(z), i) for i, z in enumerate(np.asarray(atomic_numbers).ravel())])

    def change_of_basis(self, atomic_numbers, convention="e3nn"):
        """Orthogonal ``T`` with ``AO_to = T @ AO_self`` for a whole molecule: a matrix converts as
        ``T F T^T`` (see `convert`)."""
        if convention not in CONVENTIONS:
            raise ValueError(f"OrbitalBasis: convention must be one of {CONVENTIONS}. Received: convention={convention!r}")
        blocks = [shell_change_of_basis(l, convention) @ shell_change_of_basis(l, self.convention).T
                  for z in np.asarray(atomic_numbers).ravel() for l in self._shells(z)]
        return _block_diag(blocks)

    def convert(self, matrix, atomic_numbers, to="e3nn"):
        """A matrix (or a stack ``(..., n_ao, n_ao)``) between AOs, from this basis's convention to ``to``."""
        T = self.change_of_basis(atomic_numbers, to)
        m = np.asarray(matrix)
        if m.shape[-2:] != (len(T), len(T)):
            raise ValueError(f"OrbitalBasis.convert: expected (..., {len(T)}, {len(T)}) for atomic numbers "
                             f"{np.asarray(atomic_numbers).tolist()}. Received: shape {m.shape}")
        return T @ m @ T.T

    def with_convention(self, convention):
        return OrbitalBasis(self.shells, convention, self.name)

    def rotation_matrix(self, atomic_numbers, R):
        """``D`` (``(n_ao, n_ao)``) with ``F(rotated molecule) = D F D^T`` for a proper or improper
        rotation ``R`` (``(3, 3)``, positions transform as ``r -> R r``)."""
        R = np.asarray(R, dtype=np.float64)
        if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-8):
            raise ValueError(f"OrbitalBasis.rotation_matrix: R must be a 3x3 orthogonal matrix. Received: {R.tolist()}")
        cache = {}
        blocks = []
        for z in np.asarray(atomic_numbers).ravel():
            for l in self._shells(z):
                if l not in cache:
                    C = shell_change_of_basis(l, self.convention)
                    cache[l] = C @ Irrep(l, (-1) ** l).D_from_matrix(R) @ C.T
                blocks.append(cache[l])
        return _block_diag(blocks)

    # -- serialisation -------------------------------------------------------------------------------------

    def get_config(self):
        return dict(shells={str(z): ls for z, ls in self.shells.items()}, convention=self.convention, name=self.name)

    @classmethod
    def from_config(cls, config):
        return cls({int(z): ls for z, ls in config["shells"].items()}, config.get("convention", "pyscf"), config.get("name"))

    def __eq__(self, other):
        return isinstance(other, OrbitalBasis) and self.shells == other.shells and self.convention == other.convention

    def __repr__(self):
        letters = "spdfghik"
        desc = ", ".join(f"{z}: " + "".join(f"{ls.count(l)}{letters[l] if l < len(letters) else l}" for l in sorted(set(ls)))
                         for z, ls in sorted(self.shells.items()))
        return f"OrbitalBasis({{{desc}}}, convention={self.convention!r}" + (f", name={self.name!r})" if self.name else ")")


def _block_diag(blocks):
    n = sum(len(b) for b in blocks)
    out = np.zeros((n, n))
    i = 0
    for b in blocks:
        out[i:i + len(b), i:i + len(b)] = b
        i += len(b)
    return out
