"""Clebsch-Gordan coefficients and Wigner D matrices in e3nn's real basis.

The real basis of degree ``l`` is related to the complex (``|l, m>``) basis by
``change_basis_real_to_complex(l)``. The generators of SU(2) are expressed in
that basis; e3nn's convention, kept here, lets the second generator (the
``J_z`` of physics textbooks) act as the rotation around the **y** axis, so
that for ``l = 1`` the basis is ``(x, y, z)`` and ``D^1(R) = R``.

All tables are float64 numpy, computed once (cached) and returned as copies.
"""

import functools
from fractions import Fraction
from math import factorial, isqrt

import numpy as np

__all__ = ["su2_generators", "so3_generators", "change_basis_real_to_complex", "wigner_D", "wigner_3j"]


def _check_l(l, name):
    if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or l < 0:
        raise ValueError(f"{name}: l must be a non-negative integer. Received: l={l!r}")
    return int(l)


def su2_generators(j):
    """Generators ``(3, 2j+1, 2j+1)`` (complex) of SU(2) in the ``|j, m>`` basis, ``m = -j..j``.

    The three matrices are, in the usual physics names, ``J_x``, ``J_z`` and ``-J_y``
    multiplied by ``i`` (anti-Hermitian).
    """
    two_j = int(round(2 * j))
    if two_j < 0 or abs(two_j - 2 * j) > 1e-9:
        raise ValueError(f"su2_generators: j must be a non-negative integer or half-integer. Received: j={j!r}")
    j = two_j / 2
    m = np.arange(-j, j + 1)
    # <m+1| J+ |m> on the subdiagonal, <m-1| J- |m> on the superdiagonal
    up = np.sqrt(j * (j + 1) - m[:-1] * (m[:-1] + 1))
    raising = np.diag(-up, k=-1)
    lowering = np.diag(up, k=1)
    return np.stack(
        [0.5 * (raising + lowering), np.diag(1j * m), -0.5j * (raising - lowering)],
        axis=0,
    ).astype(np.complex128)


@functools.lru_cache(maxsize=None)
def _change_basis_real_to_complex(l):
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    s = 1 / np.sqrt(2)
    for m in range(-l, 0):
        q[l + m, l + abs(m)] = s
        q[l + m, l - abs(m)] = -1j * s
    q[l, l] = 1
    for m in range(1, l + 1):
        q[l + m, l + abs(m)] = (-1) ** m * s
        q[l + m, l - abs(m)] = 1j * (-1) ** m * s
    # the global phase (-i)^l makes the Clebsch-Gordan coefficients real
    q = (-1j) ** l * q
    q.setflags(write=False)
    return q


def change_basis_real_to_complex(l):
    """Unitary ``Q (2l+1, 2l+1)`` with ``complex = Q @ real`` (rows: ``m = -l..l``)."""
    return _change_basis_real_to_complex(_check_l(l, "change_basis_real_to_complex")).copy()


@functools.lru_cache(maxsize=None)
def _so3_generators(l):
    X = su2_generators(l)
    Q = _change_basis_real_to_complex(l)
    X = np.conj(Q.T) @ X @ Q
    assert np.abs(X.imag).max() < 1e-10
    X = np.ascontiguousarray(X.real)
    X.setflags(write=False)
    return X


def so3_generators(l):
    """Real antisymmetric generators ``(3, 2l+1, 2l+1)``: rotations around x, y and z."""
    return _so3_generators(_check_l(l, "so3_generators")).copy()


@functools.lru_cache(maxsize=None)
def _exp_tables(l):
    """Eigen-decompositions used to exponentiate the x and y generators exactly."""
    X = _so3_generators(l)
    Q = _change_basis_real_to_complex(l)
    # exp(a X_y) = Q^H diag(exp(i m a)) Q
    m = np.arange(-l, l + 1, dtype=np.float64)
    # exp(b X_x) = V diag(exp(-i lam b)) V^H where 1j * X_x = V diag(lam) V^H (Hermitian)
    lam, V = np.linalg.eigh(1j * X[0])
    return m, Q, lam, V


def _exp_y(l, angle):
    m, Q, _, _ = _exp_tables(l)
    phase = np.exp(1j * angle[..., None] * m)  # (..., 2l+1)
    return np.einsum("ji,...j,jk->...ik", np.conj(Q), phase, Q).real


def _exp_x(l, angle):
    _, _, lam, V = _exp_tables(l)
    phase = np.exp(-1j * angle[..., None] * lam)
    return np.einsum("ij,...j,kj->...ik", V, phase, np.conj(V)).real


def wigner_D(l, alpha, beta, gamma):
    r"""Wigner D matrix ``(..., 2l+1, 2l+1)`` of the rotation with Euler angles (Y-X-Y).

    ``D(alpha, beta, gamma) = exp(alpha X_y) exp(beta X_x) exp(gamma X_y)``, which is
    ``angles_to_matrix(alpha, beta, gamma)`` for ``l = 1``.

    Args:
        l: `int`, the degree.
        alpha, beta, gamma: array-likes broadcastable together; rotation around y
            (applied third), x (second) and y (first).
    """
    l = _check_l(l, "wigner_D")
    alpha, beta, gamma = np.broadcast_arrays(
        np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64), np.asarray(gamma, dtype=np.float64)
    )
    return _exp_y(l, alpha) @ _exp_x(l, beta) @ _exp_y(l, gamma)


def _su2_cg(j1, m1, j2, m2, j3, m3):
    """<j1 m1 j2 m2 | j3 m3> (Condon-Shortley phase), integer arguments, exact up to one sqrt."""
    if m1 + m2 != m3:
        return 0.0
    f = factorial
    prefactor = Fraction(
        (2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3) * f(j3 + m3) * f(j3 - m3),
        f(j1 + j2 + j3 + 1) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2),
    )
    total = Fraction(0)
    for k in range(max(0, j2 - j1 + m3, m1 - j1), min(j2 + j3 + m1, j3 - j1 + j2, j3 + m3) + 1):
        total += (-1) ** (k + j2 + m2) * Fraction(
            f(j2 + j3 + m1 - k) * f(j1 - m1 + k),
            f(k) * f(j3 - j1 + j2 - k) * f(j3 + m3 - k) * f(k + j1 - j2 - m3),
        )
    # sqrt(prefactor) * total, with the square root of the fraction taken in high precision
    value = total * total * prefactor
    num, den = value.numerator, value.denominator
    scale = 1 << 120
    root = Fraction(isqrt(num * den * scale * scale), den * scale)
    return float(root) * (1.0 if total >= 0 else -1.0)


@functools.lru_cache(maxsize=None)
def _wigner_3j(l1, l2, l3):
    su2 = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1), dtype=np.float64)
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            if abs(m1 + m2) <= l3:
                su2[l1 + m1, l2 + m2, l3 + m1 + m2] = _su2_cg(l1, m1, l2, m2, l3, m1 + m2)
    Q1 = _change_basis_real_to_complex(l1)
    Q2 = _change_basis_real_to_complex(l2)
    Q3 = _change_basis_real_to_complex(l3)
    C = np.einsum("ij,kl,nm,ikn->jlm", Q1, Q2, np.conj(Q3), su2, optimize=True)
    assert np.abs(C.imag).max() < 1e-10
    C = C.real
    C = C / np.linalg.norm(C)
    C[np.abs(C) < 1e-15] = 0.0
    C.setflags(write=False)
    return C


def wigner_3j(l1, l2, l3):
    r"""Real Clebsch-Gordan coefficients ``C (2l1+1, 2l2+1, 2l3+1)``, e3nn's values and signs.

    ``C`` is invariant, ``C_ijk D1_il D2_jm D3_kn = C_lmn`` for every rotation, and has
    Frobenius norm 1. Computed from the exact SU(2) coefficients (rational arithmetic),
    then changed to the real basis; cached and returned as a copy.

    Raises:
        ValueError: if the degrees are not integers >= 0 or violate the triangle rule.
    """
    l1, l2, l3 = (_check_l(l, "wigner_3j") for l in (l1, l2, l3))
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"wigner_3j: the degrees violate the triangle rule |l1-l2| <= l3 <= l1+l2. Received: l1={l1}, l2={l2}, l3={l3}")
    return _wigner_3j(l1, l2, l3).copy()
