"""Radial functions of edge lengths: e3nn's smooth one-hot bases, Bessel basis, cutoffs."""

import math

import numpy as np
from keras import ops

from ..backend import cos, sin

__all__ = ["soft_unit_step", "soft_one_hot_linspace", "bessel_basis", "polynomial_cutoff", "xplor_cutoff", "BASES"]

BASES = ("gaussian", "cosine", "smooth_finite", "fourier", "bessel")

# Normalisation constants of `soft_one_hot_linspace`, exactly as e3nn 0.6 defines them (so that
# the numbers equal e3nn's). They are empirical: each scales a basis so that its values are of
# order one over the interval; they are not derived from a closed form.
_GAUSSIAN_NORM = 1.12  # divides exp(-d^2), d = distance to the centre in units of the spacing
# soft_unit_step(d + 1) * soft_unit_step(1 - d) = exp(-2 / (1 - d^2)) peaks at exp(-2) (d = 0):
# the factor exp(2) brings the peak to 1, and 1.14136 is e3nn's further empirical scale
_SMOOTH_FINITE_NORM = 1.14136 * math.exp(2.0)


def _fourier_norm(number):
    """e3nn's divisor of the Fourier basis of ``number`` functions: ``sqrt(1/4 + number/2)``."""
    return math.sqrt(0.25 + number / 2)


def soft_unit_step(x):
    """``exp(-1/x)`` for ``x > 0`` and 0 otherwise: smooth (C-infinity), finite gradients."""
    x = ops.convert_to_tensor(x)
    positive = x > 0
    safe = ops.where(positive, x, ops.ones_like(x))
    return ops.where(positive, ops.exp(-1.0 / safe), ops.zeros_like(x))


def soft_one_hot_linspace(x, start, end, number, basis="smooth_finite", cutoff=True):
    r"""Projection of ``x`` on ``number`` smooth bumps spread over ``[start, end]`` (e3nn's).

    Args:
        x: tensor ``(...)``.
        start, end: `float`, the interval.
        number: `int`, number of basis functions.
        basis: one of ``"gaussian"``, ``"cosine"``, ``"smooth_finite"``, ``"fourier"``, ``"bessel"``.
        cutoff: `bool`. If True the functions vanish outside ``[start, end]`` (and the bumps
            are centred inside); if False the end bumps are centred on ``start`` and ``end``.

    Returns:
        Tensor ``(..., number)``.
    """
    if basis not in BASES:
        raise ValueError(f"soft_one_hot_linspace: basis must be one of {BASES}. Received: basis={basis!r}")
    if cutoff not in (True, False):
        raise ValueError(f"soft_one_hot_linspace: cutoff must be True or False. Received: cutoff={cutoff!r}")
    if number < 1:
        raise ValueError(f"soft_one_hot_linspace: number must be >= 1. Received: number={number}")
    x = ops.convert_to_tensor(x)
    if "float" not in str(x.dtype):
        x = ops.cast(x, "float32")
    dtype = x.dtype
    if not cutoff:
        values = np.linspace(start, end, number)
        step = float(values[1] - values[0]) if number > 1 else float(end - start)
    else:
        values = np.linspace(start, end, number + 2)
        step = float(values[1] - values[0])
        values = values[1:-1]
    xe = ops.expand_dims(x, -1)
    if basis in ("gaussian", "cosine", "smooth_finite"):
        diff = (xe - ops.convert_to_tensor(values, dtype=dtype)) / step
        if basis == "gaussian":
            return ops.exp(-ops.square(diff)) / _GAUSSIAN_NORM
        if basis == "cosine":
            inside = ops.cast((diff < 1) & (diff > -1), dtype)
            return cos(math.pi / 2 * diff) * inside
        return _SMOOTH_FINITE_NORM * soft_unit_step(diff + 1) * soft_unit_step(1 - diff)
    if basis == "fourier":
        t = (xe - start) / (end - start)
        if not cutoff:
            i = ops.convert_to_tensor(np.arange(0, number), dtype=dtype)
            return cos(math.pi * i * t) / _fourier_norm(number)
        i = ops.convert_to_tensor(np.arange(1, number + 1), dtype=dtype)
        inside = ops.cast((t > 0) & (t < 1), dtype)
        return sin(math.pi * i * t) / _fourier_norm(number) * inside
    # bessel
    r = xe - start
    c = end - start
    roots = ops.convert_to_tensor(np.arange(1, number + 1) * math.pi, dtype=dtype)
    out = _sinc_over_r(roots, r, c)
    if cutoff:
        out = out * ops.cast((r / c < 1) & (r > 0), dtype)
    return out


def _sinc_over_r(roots, r, c):
    """``sqrt(2/c) sin(roots r / c) / r`` with its finite limit ``sqrt(2/c) roots / c`` at ``r = 0``."""
    nonzero = ops.not_equal(r, 0)
    safe_r = ops.where(nonzero, r, ops.ones_like(r))
    value = math.sqrt(2 / c) * sin(roots * safe_r / c) / safe_r
    return ops.where(nonzero, value, math.sqrt(2 / c) * roots / c * ops.ones_like(value))


def polynomial_cutoff(r, r_max, p=6):
    r"""NequIP's smooth envelope: ``1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` for
    ``x = r / r_max < 1``, zero beyond; ``p`` continuous derivatives vanish at ``r_max``."""
    r = ops.convert_to_tensor(r)
    x = r / r_max
    p = float(p)
    env = 1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return env * ops.cast(x < 1, env.dtype)


def xplor_cutoff(r, r_on, r_max):
    r"""The XPLOR switching function (CHARMM's, SevenNet's cutoff): 1 up to ``r_on``, then
    ``(r_max^2 - r^2)^2 (r_max^2 + 2 r^2 - 3 r_on^2) / (r_max^2 - r_on^2)^3`` down to 0 at
    ``r_max`` (value and first derivative continuous at both ends), 0 beyond.

    Example:
        >>> np.asarray(xplor_cutoff(np.array([1.0, 4.5, 4.75, 5.0, 6.0]), 4.5, 5.0)).round(4).tolist()
        [1.0, 1.0, 0.5197, 0.0, 0.0]
    """
    if not 0 <= r_on < r_max:
        raise ValueError(f"xplor_cutoff: needs 0 <= r_on < r_max. Received: r_on={r_on}, r_max={r_max}")
    r = ops.convert_to_tensor(r)
    r2, on2, max2 = r * r, float(r_on) ** 2, float(r_max) ** 2
    switch = (max2 - r2) ** 2 * (max2 + 2.0 * r2 - 3.0 * on2) / (max2 - on2) ** 3
    return ops.where(r < r_on, ops.ones_like(r), ops.where(r < r_max, switch, ops.zeros_like(r)))


def bessel_basis(r, r_max, number, weights=None):
    r"""NequIP's Bessel basis ``(2 / r_max) sin(n pi r / r_max) / r``, ``n = 1..number``.

    Args:
        r: tensor ``(...)`` of lengths (0 gives the finite limit).
        r_max: `float`.
        number: `int`.
        weights: optional tensor ``(number,)`` replacing ``n pi`` (NequIP trains them).

    Returns:
        Tensor ``(..., number)``.
    """
    r = ops.convert_to_tensor(r)
    if "float" not in str(r.dtype):
        r = ops.cast(r, "float32")
    roots = weights if weights is not None else ops.convert_to_tensor(np.arange(1, number + 1) * math.pi, dtype=r.dtype)
    return _sinc_over_r(roots, ops.expand_dims(r, -1), r_max) * math.sqrt(2.0 / r_max)
