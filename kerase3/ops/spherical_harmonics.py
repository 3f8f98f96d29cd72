"""Spherical harmonics of 3D vectors, on ``keras.ops``."""

import math

from keras import ops

from ..o3 import Irreps, sh_recursion_table

__all__ = ["spherical_harmonics", "sh_irreps"]

_NORMALIZATIONS = ("integral", "component", "norm")


def sh_irreps(ls):
    """``(irreps_out, ls_list)`` for an int, a list of ints or an irreps string/``Irreps``.

    Irreps must either all have parity ``(-1)^l`` (harmonics of a vector, ``1o``) or all be
    even (harmonics of a pseudovector, ``1e``); each ``mul`` repeats that degree.
    """
    if isinstance(ls, (str, Irreps)):
        irreps = Irreps(ls)
        if len(irreps) == 0:
            raise ValueError(f"spherical_harmonics: no degree requested. Received: ls={ls!r}")
        vector = all(ir.p == (-1) ** ir.l for _, ir in irreps)
        pseudo = all(ir.p == 1 for _, ir in irreps)
        if not (vector or pseudo):
            raise ValueError(
                "spherical_harmonics: every irrep must have parity (-1)^l (input a vector, 1o) or every irrep "
                f"must be even (input a pseudovector, 1e). Received: ls={irreps}"
            )
        ls_list = irreps.ls
        p = -1 if vector else 1
    else:
        ls_list = [ls] if isinstance(ls, int) else list(ls)
        p = -1
        if not ls_list:
            raise ValueError(f"spherical_harmonics: no degree requested. Received: ls={ls!r}")
    for l in ls_list:
        if isinstance(l, bool) or not isinstance(l, int) or l < 0:
            raise ValueError(f"spherical_harmonics: degrees must be non-negative integers. Received: ls={ls!r}")
    return Irreps([(1, (l, p**l)) for l in ls_list]).simplify(), ls_list


def _safe_normalize(vectors):
    """``v / |v|`` with the zero vector sent to zero; finite gradients everywhere."""
    r2 = ops.sum(ops.square(vectors), axis=-1, keepdims=True)
    positive = r2 > 0
    inv_r = ops.where(positive, ops.rsqrt(ops.where(positive, r2, ops.ones_like(r2))), ops.zeros_like(r2))
    return vectors * inv_r


def spherical_harmonics(ls, vectors, normalize=True, normalization="component"):
    r"""Real spherical harmonics ``Y^l(v)`` of vectors, e3nn's basis and values.

    ``Y^l(R v) = D^l(R) Y^l(v)`` for every rotation ``R``; y is the polar axis; the
    ``l = 1`` components are ``(x, y, z)`` up to normalisation. Evaluated by the
    Clebsch-Gordan recursion ``Y^{l+1} ∝ C^{(l+1,1,l)} (v ⊗ Y^l)`` (see
    ``kerase3.o3.sh_recursion_table``), exact for e3nn's range l <= 12 and stable beyond.

    Args:
        ls: `int`, list of `int`, or irreps (string or ``Irreps``) such as ``"0e + 1o + 2e"``.
        vectors: tensor ``(..., 3)``.
        normalize: `bool`. If True the vectors are first scaled to unit length (the zero
            vector stays zero: its harmonics are ``1`` for ``l = 0`` and ``0`` otherwise,
            with finite gradients). If False the harmonics are homogeneous polynomials
            of degree ``l``.
        normalization: `str`. ``"component"``: ``|Y^l|^2 = 2l+1`` on the sphere;
            ``"norm"``: ``|Y^l| = 1``; ``"integral"``: ``∫ (Y^l_m)^2 = 1`` over the sphere.

    Returns:
        Tensor ``(..., sum(2l+1))``, the degrees in the order requested.

    Example:
        >>> y = spherical_harmonics("0e + 1o", np.array([[0.0, 0.0, 2.0]]))
        >>> np.asarray(y).round(6).tolist()
        [[1.0, 0.0, 0.0, 1.732051]]
    """
    if normalization not in _NORMALIZATIONS:
        raise ValueError(
            f"spherical_harmonics: normalization must be one of {_NORMALIZATIONS}. Received: normalization={normalization!r}"
        )
    _, ls_list = sh_irreps(ls)
    vectors = ops.convert_to_tensor(vectors)
    if not ("float" in str(vectors.dtype)):
        vectors = ops.cast(vectors, "float32")
    if vectors.shape[-1] != 3:
        raise ValueError(f"spherical_harmonics: vectors must have shape (..., 3). Received: shape={tuple(vectors.shape)}")
    if normalize:
        vectors = _safe_normalize(vectors)

    v = [vectors[..., 0], vectors[..., 1], vectors[..., 2]]
    return ops.stack(harmonic_components(ls_list, v, ops.ones_like(v[0]), normalization), axis=-1)


def harmonic_components(ls, v, one, normalization="component"):
    """The components of ``Y^l`` for each ``l`` in ``ls`` (a flat list, degrees in that order) from
    the unit vector's components ``v = [x, y, z]`` and ``one`` (ones shaped like them), by the
    Clebsch-Gordan recursion of `spherical_harmonics`. Only ``+`` and ``*``: the same code runs on
    backend tensors and on numpy arrays (`kerase3.ops.s2grid.spherical_harmonics_numpy`)."""
    lmax = max(ls)
    blocks = {0: [one]}
    if lmax >= 1:
        s3 = math.sqrt(3.0)
        blocks[1] = [s3 * c for c in v]
    for l in range(1, lmax):
        prev = blocks[l]
        terms = [[] for _ in range(2 * l + 3)]
        for i, j, k, c in sh_recursion_table(l):
            terms[i].append((c, j, k))
        nxt = []
        for group in terms:
            # sum_k c * v_j * Y_k, grouped by j: v_j * (sum_k c Y_k)
            by_j = {}
            for c, j, k in group:
                by_j.setdefault(j, []).append((c, k))
            acc = None
            for j, ck in sorted(by_j.items()):
                inner = None
                for c, k in ck:
                    term = c * prev[k]
                    inner = term if inner is None else inner + term
                t = v[j] * inner
                acc = t if acc is None else acc + t
            nxt.append(acc)
        blocks[l + 1] = nxt
    scale = {"component": lambda l: 1.0, "norm": lambda l: 1.0 / math.sqrt(2 * l + 1)}.get(
        normalization, lambda l: 1.0 / math.sqrt(4 * math.pi)
    )
    out = []
    for l in ls:
        f = scale(l)
        out.extend(blocks[l] if f == 1.0 else [f * c for c in blocks[l]])
    return out
