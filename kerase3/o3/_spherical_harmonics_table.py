"""Tables for evaluating spherical harmonics by the Clebsch-Gordan recursion.

e3nn defines its (component-normalised) spherical harmonics by

    Y^0 = 1,   Y^1 = sqrt(3) (x, y, z),
    Y^{l+1}_i = c_l  sum_{jk} C^{(l+1, 1, l)}_{ijk} v_j Y^l_k,

with ``C = wigner_3j(l+1, 1, l)`` and ``c_l > 0`` chosen so that ``|Y^{l+1}|^2 = 2l+3``
on the unit sphere. Each step multiplies by one component of ``v``, so the
recursion is a product of exactly equivariant bilinear maps: it is stable to any
degree and reproduces e3nn's polynomials (which e3nn generated from the same
recursion) for l <= 12. ``C`` is sparse; the table keeps only its non-zeros.
"""

import functools

import numpy as np

from ._wigner import _wigner_3j

__all__ = ["sh_recursion_table"]


@functools.lru_cache(maxsize=None)
def _table(l):
    C = _wigner_3j(l + 1, 1, l)  # (2l+3, 3, 2l+1)
    # the norm of the unnormalised step is the same at every point of the sphere: use the y axis,
    # where Y^l is known from the previous steps
    y_axis = _sh_at_y_axis(l)
    step = C[:, 1, :] @ y_axis
    scale = np.sqrt(2 * l + 3) / np.linalg.norm(step)
    out, comp, prev = np.nonzero(np.abs(C) > 1e-14)
    coef = C[out, comp, prev] * scale
    return tuple((int(i), int(j), int(k), float(c)) for i, j, k, c in zip(out, comp, prev, coef))


@functools.lru_cache(maxsize=None)
def _sh_at_y_axis(l):
    if l == 0:
        return np.ones(1)
    prev = _sh_at_y_axis(l - 1)
    v = np.array([0.0, 1.0, 0.0])
    y = np.zeros(2 * l + 1)
    for i, j, k, c in _table(l - 1):
        y[i] += c * v[j] * prev[k]
    return y


def sh_recursion_table(l):
    """Non-zero terms ``(i, j, k, coefficient)`` of ``Y^{l+1}_i += coefficient * v_j * Y^l_k``.

    Args:
        l: `int` >= 0, the degree of the input ``Y^l``.

    Returns:
        A tuple of ``(i, j, k, float)``, sorted by ``i``.
    """
    if l < 0:
        raise ValueError(f"sh_recursion_table: l must be >= 0. Received: l={l}")
    return _table(int(l))
