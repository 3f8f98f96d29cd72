"""Crystal matrices in reciprocal space: ``H(k) = sum_R exp(2 pi i k.R) H(R)`` from real-space
image blocks, and band energies (numpy)."""

import numpy as np
import scipy.linalg

__all__ = ["bloch_matrices", "band_energies"]


def bloch_matrices(image_blocks, kpoints, orbitals_per_atom):
    """``H(k)`` for every k-point from the blocks ``H_ij(R)`` of `HamiltonianModel.predict_image_blocks`.

    ``H(k)[i, j] = sum_R exp(2 pi i k.n) H_ij(R)`` (``R = n1 a1 + n2 a2 + n3 a3``): the "lattice
    gauge" of PySCF's ``cell.pbc_intor(..., kpts=...)`` and ``get_hcore(kpt)``; its eigenvalues
    are the bands. The blocks of every ``R`` are summed into one ``(n_ao, n_ao)`` matrix, and the
    phases of all k-points applied to all of them in one product.

    Args:
        image_blocks: ``{(i, j, (n1, n2, n3)): (n_ao_i, n_ao_j)}`` (with ``H_ji(-R) = H_ij(R)^T``
            the result is Hermitian).
        kpoints: ``(K, 3)`` in units of the reciprocal lattice vectors (fractional: ``(0.5, 0, 0)``
            is half of ``b1``).
        orbitals_per_atom: AOs of each atom, in order.

    Returns:
        ``(K, n_ao, n_ao)`` complex128.
    """
    sizes = np.asarray(orbitals_per_atom, int)
    start = np.concatenate([[0], np.cumsum(sizes)])
    n = int(start[-1])
    kpoints = np.atleast_2d(np.asarray(kpoints, np.float64))
    if kpoints.shape[-1] != 3:
        raise ValueError(f"bloch_matrices: kpoints must be (K, 3) fractional coordinates. Received: shape={kpoints.shape}")
    images = sorted({key[2] for key in image_blocks})
    where = {t: k for k, t in enumerate(images)}
    real = np.zeros((len(images), n, n))
    for (i, j, t), block in image_blocks.items():
        block = np.asarray(block, np.float64)
        if block.shape != (sizes[i], sizes[j]):
            raise ValueError(f"bloch_matrices: block {(i, j, t)} has shape {block.shape}; atoms {i} and {j} have "
                             f"{sizes[i]} and {sizes[j]} orbitals")
        real[where[t], start[i]:start[i + 1], start[j]:start[j + 1]] += block
    phases = np.exp(2j * np.pi * kpoints @ np.asarray(images, np.float64).T)  # (K, images)
    return np.einsum("kr,rab->kab", phases, real)


def band_energies(hamiltonians, overlaps=None):
    """Eigenvalues of ``H(k) c = e S(k) c`` per k-point, ascending: ``(K, n_ao)`` (``S = 1`` when
    ``overlaps`` is None)."""
    hamiltonians = np.asarray(hamiltonians)
    if overlaps is None:
        return np.stack([np.linalg.eigvalsh(h) for h in hamiltonians])
    return np.stack([scipy.linalg.eigh(h, s, eigvals_only=True) for h, s in zip(hamiltonians, np.asarray(overlaps))])
