"""Dataset statistics accumulated one graph at a time (memory independent of the number of graphs).

`GraphStatistics` gathers what `Potential.fit_statistics` and `MACE.fit_statistics` need -- the
least-squares problem of energies on composition (as normal equations), the mean square force and
the number of edges per atom -- from a list of graphs or from a stream (`write_graph_records`
computes it while writing, and stores it beside the records).
"""

import warnings

import numpy as np
from . import keys as K

__all__ = ["GraphStatistics"]


#: RMS forces below this (eV/A) give no energy scale: the RMS residual energy per atom is used
MIN_FORCE_SCALE = 1e-4
#: energy scales below this are replaced by 1
MIN_ENERGY_SCALE = 1e-8


class GraphStatistics:
    """Running statistics of graphs: ``update(graph)`` per graph, then `energy_statistics`.

    Energies are fitted as ``E ~ sum_z n_z E_z`` by least squares (elements that always appear in
    the same ratio share the energy: the minimal-norm solution); the scale is the RMS force component or,
    without forces, the RMS residual energy per atom. Energies are offset by the first
    structure's energy per atom before accumulating, so the residual is not lost to cancellation.
    """

    def __init__(self):
        self.n_structures = self.n_atoms = self.n_edges = 0
        self.max_atoms = self.max_edges = 0
        self.elements = []  # in order of appearance
        self.all_energy = self.all_forces = True
        self._offset = None
        self._ata, self._ate = np.zeros((0, 0)), np.zeros(0)  # sum c c^T, sum c e
        self._ata_w, self._ate_w, self._ee_w = np.zeros((0, 0)), np.zeros(0), 0.0  # the same / n^2, and sum e^2 / n^2
        self._f2, self._f_count = 0.0, 0
        self.cutoff = None  # the cutoff the graphs were made at, where known (records)

    @classmethod
    def of(cls, graphs):
        """Statistics of a list of graphs (or a `GraphStatistics`, returned as it is)."""
        if isinstance(graphs, cls):
            return graphs
        stats = cls()
        for i, g in enumerate(graphs):
            stats.update(g, name=f"structure {i}")
        return stats

    def _grow(self, z):
        self.elements.append(int(z))
        k = len(self.elements)
        for attr in ("_ata", "_ata_w"):
            m = np.zeros((k, k))
            m[: k - 1, : k - 1] = getattr(self, attr)
            setattr(self, attr, m)
        self._ate = np.append(self._ate, 0.0)
        self._ate_w = np.append(self._ate_w, 0.0)

    def update(self, g, name=None):
        """Add one graph dict (``atomic_numbers``, ``senders`` and optional ``energy``, ``forces``)."""
        name = f"structure {self.n_structures}" if name is None else name
        z = np.asarray(g[K.ATOMIC_NUMBERS]).reshape(-1)
        n, e_count = len(z), len(g[K.SENDERS])
        for zi in np.unique(z):
            if int(zi) not in self.elements:
                self._grow(zi)
        index = {el: i for i, el in enumerate(self.elements)}
        c = np.zeros(len(self.elements))
        for zi, cnt in zip(*np.unique(z, return_counts=True)):
            c[index[int(zi)]] = cnt
        self.n_structures += 1
        self.n_atoms += n
        self.n_edges += e_count
        self.max_atoms, self.max_edges = max(self.max_atoms, n), max(self.max_edges, e_count)
        if K.ENERGY in g:
            e = float(np.asarray(g[K.ENERGY]))
            if not np.isfinite(e):
                raise ValueError(f"GraphStatistics: non-finite energy in {name}")
            if self._offset is None:
                self._offset = e / max(n, 1)
            e = e - self._offset * n
            w = 1.0 / max(n, 1) ** 2
            self._ata += np.outer(c, c)
            self._ate += c * e
            self._ata_w += w * np.outer(c, c)
            self._ate_w += w * c * e
            self._ee_w += w * e * e
        else:
            self.all_energy = False
        if K.FORCES in g:
            f = np.asarray(g[K.FORCES], np.float64)
            if not np.all(np.isfinite(f)):
                raise ValueError(f"GraphStatistics: non-finite forces in {name}")
            self._f2 += float(np.sum(f * f))
            self._f_count += f.size
        else:
            self.all_forces = False

    @property
    def avg_num_neighbors(self):
        """Edges per atom."""
        return self.n_edges / max(self.n_atoms, 1)

    def energy_statistics(self, species, name="energy_statistics"):
        """``(per-species energies (len(species),), scale)``; elements outside ``species`` raise."""
        unknown = sorted(set(self.elements) - {int(z) for z in species})
        if unknown:
            raise ValueError(f"{name}: elements {unknown} are not in species={list(species)}")
        t = len(species)
        to_species = np.zeros((len(self.elements), t))
        for i, el in enumerate(self.elements):
            to_species[i, list(species).index(el)] = 1.0
        sol = np.zeros(t)
        rms_resid = 1.0
        if self.all_energy and self.n_structures:
            ata = to_species.T @ self._ata @ to_species
            ate = to_species.T @ self._ate
            sol = np.linalg.pinv(ata, rcond=1e-12, hermitian=True) @ ate
            ata_w, ate_w = to_species.T @ self._ata_w @ to_species, to_species.T @ self._ate_w
            sse = max(self._ee_w - 2 * sol @ ate_w + sol @ ata_w @ sol, 0.0)
            rms_resid = float(np.sqrt(sse / self.n_structures))
            present = np.diag(ata) > 0
            sol = np.where(present, sol + self._offset, 0.0)  # the offset per atom goes back to each element
        scale = float(np.sqrt(self._f2 / self._f_count)) if self.all_forces and self._f_count else 0.0
        if scale < MIN_FORCE_SCALE:
            if self.all_forces and self._f_count:  # forces all (nearly) zero: perfect crystals, an equation of state
                warnings.warn(f"{name}: the RMS force is {scale:.1e} eV/A (below {MIN_FORCE_SCALE:g}): the energy scale "
                              f"is the RMS residual energy per atom instead ({rms_resid:.3g})", stacklevel=3)
            scale = rms_resid
        if not scale > MIN_ENERGY_SCALE:
            if self.n_structures:
                warnings.warn(f"{name}: the energies are fitted exactly by the per-species energies and the forces are "
                              f"zero: the energy scale is 1", stacklevel=3)
            scale = 1.0
        return sol, scale

    # -- JSON, to store beside the records -----------------------------------------------------------

    def to_dict(self):
        return dict(n_structures=self.n_structures, n_atoms=self.n_atoms, n_edges=self.n_edges, max_atoms=self.max_atoms,
                    max_edges=self.max_edges, elements=self.elements, all_energy=self.all_energy,
                    all_forces=self.all_forces, offset=self._offset, ata=self._ata.tolist(), ate=self._ate.tolist(),
                    ata_w=self._ata_w.tolist(), ate_w=self._ate_w.tolist(), ee_w=self._ee_w, f2=self._f2,
                    f_count=self._f_count)

    @classmethod
    def from_dict(cls, d):
        s = cls()
        for k in ("n_structures", "n_atoms", "n_edges", "max_atoms", "max_edges", "all_energy", "all_forces"):
            setattr(s, k, d[k])
        s.elements = [int(z) for z in d["elements"]]
        s._offset = d["offset"]
        k = len(s.elements)
        s._ata, s._ate = np.asarray(d["ata"], float).reshape(k, k), np.asarray(d["ate"], float).reshape(k)
        s._ata_w, s._ate_w = np.asarray(d["ata_w"], float).reshape(k, k), np.asarray(d["ate_w"], float).reshape(k)
        s._ee_w, s._f2, s._f_count = float(d["ee_w"]), float(d["f2"]), int(d["f_count"])
        return s
