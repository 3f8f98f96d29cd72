"""PySCF adapters: orbital bases of PySCF molecules and offline Hamiltonian datasets
(``pip install pyscf``; an optional extra).

    from kerase3.io import pyscf as k3pyscf
    data = k3pyscf.hamiltonian_dataset(["O", "H", "H"], positions, 500, basis="def2-svp",
                                       cache="water.npz")
"""

import hashlib
import os

import numpy as np

from ..o3 import OrbitalBasis
from ..graph import keys as K

__all__ = ["compute_kpoint_matrices", "supercell_matrices", "orbital_basis", "make_molecule", "compute_matrices", "random_conformations", "hamiltonian_dataset", "load_dataset",
           "density_from_fock", "run_scf", "make_cell", "compute_cell_matrices", "crystal_dataset"]


def _pyscf():
    try:
        import pyscf
        from pyscf import dft, gto, scf
    except ImportError as e:  # pragma: no cover - the extra is missing
        raise ImportError("kerase3.io.pyscf needs PySCF: pip install pyscf") from e
    return pyscf, gto, scf, dft


def orbital_basis(mol, convention="pyscf"):
    """The `OrbitalBasis` of a PySCF ``Mole`` (spherical AOs in PySCF's order).

    Raises:
        ValueError: for Cartesian bases (``mol.cart = True``) or elements whose atoms have
            different basis sets.
    """
    if getattr(mol, "cart", False):
        raise ValueError("orbital_basis: Cartesian AO bases (mol.cart=True) have no irreps decomposition per shell; "
                         "build the molecule with cart=False (spherical AOs)")
    shells = {}
    for a in range(mol.natm):
        z = int(_atomic_number(mol.atom_pure_symbol(a)))
        ls = []
        for b in range(mol.nbas):
            if mol.bas_atom(b) == a:
                ls += [int(mol.bas_angular(b))] * int(mol.bas_nctr(b))
        if z in shells and shells[z] != ls:
            raise ValueError(f"orbital_basis: atoms of element {z} carry different basis sets ({shells[z]} vs {ls})")
        shells[z] = ls
    name = mol.basis if isinstance(mol.basis, str) else None
    return OrbitalBasis(shells, convention=convention, name=name)


def _atomic_number(symbol):
    from pyscf.data.elements import charge

    return charge(symbol)


def make_molecule(atomic_numbers, positions, basis="def2-svp", charge=0, spin=0):
    """A PySCF ``Mole`` from atomic numbers and positions in Angstrom (spherical AOs)."""
    _, gto, _, _ = _pyscf()
    atom = [(int(z), tuple(float(c) for c in p)) for z, p in zip(atomic_numbers, np.asarray(positions, np.float64))]
    return gto.M(atom=atom, basis=basis, charge=charge, spin=spin, unit="Angstrom", cart=False, verbose=0)


def _mean_field(system, method, xc, conv_tol, caller, scf, dft):
    """PySCF's RHF or RKS object (``scf``/``dft``: the molecular or the PBC modules)."""
    if method == "rhf":
        mf = scf.RHF(system)
    elif method == "rks":
        mf = dft.RKS(system)
        mf.xc = xc or "b3lyp"
    else:
        raise ValueError(f"{caller}: method must be 'rhf' or 'rks'. Received: method={method!r}")
    mf.conv_tol = conv_tol
    return mf


def compute_matrices(mol, method="rhf", xc=None, dm0=None, conv_tol=1e-10):
    """Converged ``fock``, ``overlap``, ``core`` (Hcore), ``energy`` and the density matrix.

    Args:
        mol: PySCF ``Mole``.
        method: ``"rhf"`` or ``"rks"`` (DFT; ``xc`` e.g. ``"b3lyp"``).
        dm0: starting density (speeds up neighbouring conformations).
    """
    _, _, scf, dft = _pyscf()
    mf = _mean_field(mol, method, xc, conv_tol, "compute_matrices", scf, dft)
    mf.kernel(dm0=dm0)
    if not mf.converged:
        raise RuntimeError(f"compute_matrices: SCF did not converge for {mol.atom}")
    dm = mf.make_rdm1()
    return {"fock": np.asarray(mf.get_fock(dm=dm)), K.OVERLAP: np.asarray(mol.intor("int1e_ovlp")),
            "core": np.asarray(mf.get_hcore()), K.ENERGY: float(mf.e_tot), "density": np.asarray(dm)}


def random_conformations(positions, n, displacement=0.1, seed=0, random_orientation=False):
    """``n`` conformations: Gaussian displacements (Angstrom, per coordinate) of ``positions``,
    optionally rotated at random (proper rotations)."""
    from ..o3 import rand_matrix

    rng = np.random.default_rng(seed)
    pos = np.asarray(positions, np.float64)
    out = pos[None] + displacement * rng.normal(size=(n,) + pos.shape)
    if random_orientation:
        for k in range(n):
            c = out[k].mean(0)
            out[k] = (out[k] - c) @ rand_matrix(seed=rng).T + c
    return out


def _inputs_key(*inputs):
    """A hash of everything else that determines a dataset (geometry, sizes, options): a cache made
    for other inputs is recomputed, never returned."""
    h = hashlib.sha256()
    for x in inputs:
        a = np.asarray(x if x is not None else "None")
        h.update(str(a.dtype.kind).encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a.astype(np.float64) if a.dtype.kind in "iufb" else a.astype(str)).tobytes())
    return h.hexdigest()[:32]


def hamiltonian_dataset(atomic_numbers, positions, n, basis="def2-svp", method="rhf", xc=None, displacement=0.1,
                        seed=0, random_orientation=False, cache=None, verbose=False):
    """Fock, overlap and core matrices of ``n`` randomly displaced conformations, cached to ``.npz``.

    Returns:
        dict of arrays: ``atomic_numbers (n_atoms,)``, ``positions (n, n_atoms, 3)`` (Angstrom),
        ``fock``, ``overlap``, ``core`` ``(n, n_ao, n_ao)`` (Hartree, PySCF's AO order),
        ``energy (n,)``, and strings ``pyscf_version``, ``method``, ``basis``, ``xc``.
        A cache file made from the same inputs (molecule, positions, size, method, basis, options) is
        read instead of recomputed; one made from other inputs is recomputed and overwritten.
    """
    pyscf, _, _, _ = _pyscf()
    z = np.asarray(atomic_numbers, np.int64)
    meta = dict(method=method, basis=basis, xc=xc or "", displacement=float(displacement), seed=int(seed),
                inputs=_inputs_key(z, positions, n, random_orientation))
    if cache is not None and os.path.exists(cache):
        data = load_dataset(cache)
        same = all(str(data.get(k)) == str(v) for k, v in meta.items()) and len(data[K.ENERGY]) == n \
            and np.array_equal(data[K.ATOMIC_NUMBERS], z)
        if same:
            return data
    confs = random_conformations(positions, n, displacement, seed, random_orientation)
    keys = ("fock", K.OVERLAP, "core", K.ENERGY)
    out = {k: [] for k in keys}
    dm = None
    for i, p in enumerate(confs):
        mats = compute_matrices(make_molecule(z, p, basis), method, xc, dm0=dm)
        dm = mats["density"]
        for k in keys:
            out[k].append(mats[k])
        if verbose and (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n} conformations")
    data = {k: np.asarray(v) for k, v in out.items()}
    data.update(atomic_numbers=z, positions=confs, pyscf_version=pyscf.__version__, **meta)
    if cache is not None:
        os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
        np.savez_compressed(cache, **data)
    return data


def load_dataset(path):
    """A dataset written by `hamiltonian_dataset` (strings come back as ``str``)."""
    with np.load(path) as f:
        return {k: (str(f[k]) if f[k].dtype.kind == "U" else (f[k].item() if f[k].ndim == 0 and f[k].dtype.kind == "f" else f[k]))
                for k in f.files}


def density_from_fock(fock, overlap, n_occupied):
    """The closed-shell density matrix of a Fock matrix: ``F C = S C e`` (generalised eigenproblem
    with the overlap), the ``n_occupied`` lowest orbitals doubly occupied (aufbau):
    ``D = 2 C_occ C_occ^T`` (AO basis, PySCF's ``dm`` convention)."""
    import scipy.linalg

    fock, overlap = np.asarray(fock, np.float64), np.asarray(overlap, np.float64)
    if fock.ndim != 2 or fock.shape != overlap.shape or fock.shape[0] != fock.shape[1]:
        raise ValueError(f"density_from_fock: fock and overlap must be square matrices of one shape. "
                         f"Received: {fock.shape}, {overlap.shape}")
    if not 0 < int(n_occupied) <= len(fock):
        raise ValueError(f"density_from_fock: n_occupied must be in 1..{len(fock)}. Received: {n_occupied}")
    _, c = scipy.linalg.eigh(0.5 * (fock + fock.T), overlap)
    occ = c[:, : int(n_occupied)]
    return 2.0 * occ @ occ.T


def run_scf(mol, fock=None, method="rhf", xc=None, conv_tol=1e-10):
    """Converge PySCF's SCF from the density of a (predicted) Fock matrix, or from PySCF's default
    guess (``minao``) when ``fock`` is None.

    Returns:
        dict: ``cycles`` (SCF iterations to convergence), ``converged``, ``energy`` (converged
        total energy, Hartree), ``guess_energy`` (total energy of the starting density, no
        iterations: the one-shot energy of a predicted Fock) and ``density``.
    """
    _, _, scf, dft = _pyscf()
    if mol.spin != 0:
        raise ValueError(f"run_scf: closed-shell molecules only (RHF/RKS). Received: spin={mol.spin}")
    mf = _mean_field(mol, method, xc, conv_tol, "run_scf", scf, dft)
    if fock is None:
        dm0 = mf.get_init_guess()
    else:
        dm0 = density_from_fock(fock, mol.intor("int1e_ovlp"), mol.nelectron // 2)
    guess_energy = float(mf.energy_tot(dm=dm0))
    mf.kernel(dm0=dm0)
    return {"cycles": int(mf.cycles), "converged": bool(mf.converged), K.ENERGY: float(mf.e_tot),
            "guess_energy": guess_energy, "density": np.asarray(mf.make_rdm1())}


def make_cell(atomic_numbers, positions, lattice, basis="gth-szv", pseudo="gth-pade", ke_cutoff=None):
    """A PySCF PBC ``Cell`` (3D periodic) from atomic numbers, positions and lattice vectors (rows),
    in Angstrom, with GTH pseudopotentials and basis by default."""
    _pyscf()
    from pyscf.pbc import gto as pbcgto

    atom = [(int(z), tuple(float(c) for c in p)) for z, p in zip(atomic_numbers, np.asarray(positions, np.float64))]
    kw = {} if ke_cutoff is None else dict(ke_cutoff=float(ke_cutoff))
    return pbcgto.M(a=np.asarray(lattice, np.float64), atom=atom, basis=basis, pseudo=pseudo, unit="Angstrom", verbose=0, **kw)


def compute_cell_matrices(cell, method="rks", xc="lda,vwn", dm0=None, conv_tol=1e-9):
    """Gamma-point ``fock``, ``overlap``, ``energy`` and ``density`` of a PySCF ``Cell`` (``rhf`` or
    ``rks``; the Fock matrix is the sum over lattice images of the real-space blocks)."""
    _pyscf()
    from pyscf.pbc import dft as pbcdft
    from pyscf.pbc import scf as pbcscf

    mf = _mean_field(cell, method, xc, conv_tol, "compute_cell_matrices", pbcscf, pbcdft)
    mf.max_cycle = 100
    mf.kernel(dm0=dm0)
    if not mf.converged:  # Gamma-point cells can slosh: second-order SCF from where DIIS stopped
        dm = mf.make_rdm1()
        mf = mf.newton()
        mf.conv_tol = conv_tol
        mf.kernel(dm0=dm)
    if not mf.converged:
        raise RuntimeError("compute_cell_matrices: SCF did not converge")
    dm = mf.make_rdm1()
    return {"fock": np.asarray(mf.get_fock(dm=dm)), K.OVERLAP: np.asarray(cell.pbc_intor("int1e_ovlp")),
            K.ENERGY: float(mf.e_tot), "density": np.asarray(dm)}


def compute_kpoint_matrices(cell, kmesh, method="rks", xc="lda,vwn", conv_tol=1e-9, band_kpoints=None):
    """A k-point mean field of a PySCF ``Cell`` on a ``kmesh`` (Monkhorst-Pack, Gamma-centred):
    ``fock``, ``overlap`` ``(n_k, n_ao, n_ao)`` complex at ``kpoints`` (``(n_k, 3)``, fractional
    coordinates of the reciprocal lattice), ``energy``; with ``band_kpoints`` (fractional) also
    PySCF's own ``bands`` there (``mf.get_bands``, Hartree) and the ``band_overlap`` ``S(k)``.
    `supercell_matrices` turns the mesh into Gamma-point matrices of the matching supercell."""
    _pyscf()
    from pyscf.pbc import dft as pbcdft
    from pyscf.pbc import scf as pbcscf

    kpts = cell.make_kpts(list(kmesh), wrap_around=False)
    if method == "rks":
        mf = pbcdft.KRKS(cell, kpts)
        mf.xc = xc
    elif method == "rhf":
        mf = pbcscf.KRHF(cell, kpts)
    else:
        raise ValueError(f"compute_kpoint_matrices: method must be 'rks' or 'rhf'. Received: {method!r}")
    mf.conv_tol, mf.verbose = conv_tol, 0
    mf.kernel()
    if not mf.converged:
        raise RuntimeError("compute_kpoint_matrices: SCF did not converge")
    frac = cell.get_scaled_kpts(kpts)
    out = {"fock": np.asarray(mf.get_fock()), K.OVERLAP: np.asarray(mf.get_ovlp()), "kpoints": np.asarray(frac),
           K.ENERGY: float(mf.e_tot)}
    if band_kpoints is not None:
        kb = cell.get_abs_kpts(np.asarray(band_kpoints, np.float64))
        energies, _ = mf.get_bands(kb)
        out["bands"] = np.asarray(energies)
        out["band_overlap"] = np.asarray(cell.pbc_intor("int1e_ovlp", kpts=kb))
    return out


def supercell_matrices(matrices, kpoints, kmesh, atomic_numbers, positions, lattice):
    """Gamma-point matrices of the ``kmesh[0] x kmesh[1] x kmesh[2]`` supercell from k-point matrices
    of its primitive cell (the inverse Bloch sum on the mesh, ``H(R) = 1/N_k sum_k exp(-2 pi i k.R)
    H(k)``, with PySCF's ``H(k) = sum_R exp(2 pi i k.R) H(R)``): the block between atom ``i`` of cell
    ``T1`` and atom ``j`` of cell ``T2`` is ``H_ij(T2 - T1)`` (modulo the supercell).

    Returns:
        ``(atomic_numbers, positions, lattice, matrices)`` of the supercell (Angstrom; atoms ordered
        cell by cell, AOs atom by atom), the matrices real ``(n, n_sc_ao, n_sc_ao)``.
    """
    kmesh = np.asarray(kmesh, int)
    cells = np.array([(a, b, c) for a in range(kmesh[0]) for b in range(kmesh[1]) for c in range(kmesh[2])])
    matrices = np.asarray(matrices)
    kpoints = np.asarray(kpoints, np.float64)
    n_k = len(kpoints)
    if matrices.shape[-3] != n_k or n_k != int(np.prod(kmesh)):
        raise ValueError(f"supercell_matrices: {matrices.shape[-3]} matrices and {n_k} k-points for a mesh of "
                         f"{int(np.prod(kmesh))}")
    # H(R) on the mesh's cells (aliased: the sum over R + supercell vectors)
    phases = np.exp(-2j * np.pi * cells @ kpoints.T) / n_k  # (cells, k)
    real = np.einsum("rk,...kab->...rab", phases, matrices)
    # real for a Gamma-centred mesh (k and -k both on it); PySCF's k-point Fock matrices leave up to
    # ~1e-4 of imaginary noise (its FFT grids, distorted cells), the k-points of another mesh O(1)
    if np.abs(real.imag).max() > 1e-3 * max(1.0, np.abs(real.real).max()):
        raise ValueError("supercell_matrices: the inverse Bloch sum is not real: the k-points are not the mesh's")
    real = real.real
    n_ao = matrices.shape[-1]
    n_cells = len(cells)
    index = {tuple(c): k for k, c in enumerate(cells)}
    big = np.zeros(matrices.shape[:-3] + (n_cells * n_ao, n_cells * n_ao))
    for a, t1 in enumerate(cells):
        for b, t2 in enumerate(cells):
            r = index[tuple((t2 - t1) % kmesh)]
            big[..., a * n_ao:(a + 1) * n_ao, b * n_ao:(b + 1) * n_ao] = real[..., r, :, :]
    lattice = np.asarray(lattice, np.float64)
    z = np.tile(np.asarray(atomic_numbers), n_cells)
    pos = (np.asarray(positions, np.float64)[None] + (cells @ lattice)[:, None]).reshape(-1, 3)
    return z, pos, lattice * kmesh[:, None], big


def crystal_dataset(atomic_numbers, positions, lattice, n, basis="gth-szv", pseudo="gth-pade", method="rks",
                    xc="lda,vwn", displacement=0.05, strain=0.02, ke_cutoff=None, seed=0, cache=None, verbose=False):
    """Gamma-point Fock and overlap matrices of ``n`` distorted cells: Gaussian atomic displacements
    (Angstrom) and a random symmetric strain of the lattice (``strain``: its standard deviation),
    cached to ``.npz``.

    Returns:
        dict: ``atomic_numbers``, ``positions (n, n_atoms, 3)``, ``cells (n, 3, 3)``, ``fock``,
        ``overlap`` ``(n, n_ao, n_ao)``, ``energy (n,)`` and the settings.
    """
    pyscf, _, _, _ = _pyscf()
    z = np.asarray(atomic_numbers, np.int64)
    meta = dict(method=method, basis=basis, pseudo=pseudo, xc=xc, displacement=float(displacement), strain=float(strain),
                seed=int(seed), inputs=_inputs_key(z, positions, n, lattice, ke_cutoff))
    if cache is not None and os.path.exists(cache):
        data = load_dataset(cache)
        if all(str(data.get(k)) == str(v) for k, v in meta.items()) and len(data[K.ENERGY]) == n \
                and np.array_equal(data[K.ATOMIC_NUMBERS], z):
            return data
    rng = np.random.default_rng(seed)
    lattice, positions = np.asarray(lattice, np.float64), np.asarray(positions, np.float64)
    out = {k: [] for k in (K.POSITIONS, "cells", "fock", K.OVERLAP, K.ENERGY)}
    dm = None
    for i in range(n):
        eps = rng.normal(scale=strain, size=(3, 3))
        deform = np.eye(3) + 0.5 * (eps + eps.T)
        cell_vectors = lattice @ deform
        pos = positions @ deform + displacement * rng.normal(size=positions.shape)
        mats = compute_cell_matrices(make_cell(z, pos, cell_vectors, basis, pseudo, ke_cutoff), method, xc, dm0=dm)
        dm = mats["density"]
        for k, v in ((K.POSITIONS, pos), ("cells", cell_vectors), ("fock", mats["fock"]), (K.OVERLAP, mats[K.OVERLAP]),
                     (K.ENERGY, mats[K.ENERGY])):
            out[k].append(v)
        if verbose and (i + 1) % 10 == 0:
            print(f"  {i + 1}/{n} cells")
    data = {k: np.asarray(v) for k, v in out.items()}
    data.update(atomic_numbers=z, pyscf_version=pyscf.__version__, **meta)
    if cache is not None:
        os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
        np.savez_compressed(cache, **data)
    return data
