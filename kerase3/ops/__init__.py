"""Stateless tensor functions on ``keras.ops``: they run on every Keras backend."""

from .spherical_harmonics import sh_irreps, spherical_harmonics

__all__ = ["spherical_harmonics", "sh_irreps"]
