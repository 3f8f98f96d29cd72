import keras
import numpy as np
import pytest

from kerase3.graph import GraphDataset, batch_graphs, pad_batch
from kerase3.io import OrbitalBasis
from kerase3.graph import hamiltonian_graphs
from kerase3.models import HamiltonianModel
from kerase3.testing import assert_graph_model_equivariant

requires_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="training runs on the tensorflow backend here")
BASIS = OrbitalBasis({8: [0, 0, 0, 1, 1, 2], 1: [0, 0, 1]}, "pyscf", "def2-svp")
WATER = np.array([8, 1, 1]), np.array([[0.0, 0.0, 0.1], [0.1, 0.2, 0.96], [0.93, -0.1, -0.25]])


def test_equivariance_symmetry_permutation_and_overlap():
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(BASIS, cutoff=4.0, mul=4, layers=1, mul_pair=2, predict_overlap=True, dtype="float64")
    z, pos = WATER
    H = model.predict_matrix(z, pos)
    S = model.predict_matrix(z, pos, target="overlap")
    assert H.shape == (24, 24) and S.shape == (24, 24)
    np.testing.assert_array_equal(H, H.T)
    np.testing.assert_array_equal(S, S.T)
    # two molecules in a padded batch: D(R) H D(R)^T under rotations and inversion, AO blocks permuted with the atoms
    oh = (np.array([1, 8]), np.array([[0.0, 0.0, 0.0], [0.2, 0.1, 0.95]]))
    graphs = hamiltonian_graphs(BASIS, [z, oh[0]], [pos, oh[1]], cutoff=4.0, num_orbitals=26)
    b = batch_graphs([{k: v for k, v in g.items()} for g in graphs])
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]) + 2, 3)
    errors = assert_graph_model_equivariant(model, b, {"hamiltonian": "orbital", "overlap": "orbital"}, basis=BASIS,
                                            n_trials=1, seed=1, atol=1e-11)
    assert errors["scale"] > 1e-3
    # swapping the hydrogens permutes their AO blocks
    P = np.eye(24)[list(range(14)) + list(range(19, 24)) + list(range(14, 19))]
    np.testing.assert_allclose(model.predict_matrix(z[[0, 2, 1]], pos[[0, 2, 1]]), P @ H @ P.T, atol=1e-12)
    with pytest.raises(ValueError, match="target"):
        model.predict_matrix(z, pos, target="density")


def test_batches_of_different_molecules_equal_single_predictions(tmp_path):
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(BASIS, cutoff=4.0, mul=4, layers=1, mul_pair=2, dtype="float64")
    z, pos = WATER
    oh = (np.array([1, 8]), np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.97]]))
    graphs = hamiltonian_graphs(BASIS, [z, oh[0]], [pos, oh[1]], 4.0)
    assert graphs[0]["orbital_mask"].sum() == 24 and graphs[1]["orbital_mask"].sum() == 19
    b = batch_graphs(graphs)
    b = pad_batch(b, 7, len(b["senders"]) + 3, 3)
    out = np.asarray(model(b)["hamiltonian"])
    np.testing.assert_allclose(out[0], model.predict_matrix(*WATER), atol=1e-12)
    np.testing.assert_allclose(out[1, :19, :19], model.predict_matrix(*oh), atol=1e-12)
    assert np.all(out[1, 19:] == 0) and np.all(out[2] == 0)
    # .keras round trip
    path = tmp_path / "h.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.basis == BASIS
    np.testing.assert_allclose(loaded.predict_matrix(*WATER), model.predict_matrix(*WATER), atol=1e-12)
    with pytest.raises(ValueError, match="num_orbitals"):
        hamiltonian_graphs(BASIS, z, [pos], 4.0, num_orbitals=10)
    with pytest.raises(ValueError, match="hamiltonian"):
        hamiltonian_graphs(BASIS, z, [pos], 4.0, hamiltonian=[np.zeros((5, 5))])


@pytest.mark.slow  # tutorials/06_hamiltonian_water.py trains on 400 conformations
@requires_tf
def test_trained_model_beats_the_mean_on_held_out_pyscf_conformations():
    kp = pytest.importorskip("kerase3.io.pyscf")
    pytest.importorskip("pyscf")
    z, pos = WATER
    data = kp.hamiltonian_dataset(z, pos, 60, basis="sto-3g", displacement=0.08, seed=0)
    basis = kp.orbital_basis(kp.make_molecule(z, pos, basis="sto-3g"))
    graphs = hamiltonian_graphs(basis, z, data["positions"], 4.0, hamiltonian=data["fock"])
    train, test = graphs[:45], graphs[45:]
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=4.0, mul=8, lmax=2, layers=1, mul_pair=8)
    model.fit_statistics(train)
    ds = GraphDataset(train, batch_size=5, targets=("hamiltonian",), extra_inputs=("orbital_mask",))
    # graph mode: XLA's compilation of this train step takes longer than the 20 epochs (see tutorial 06 for XLA)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 20 * len(ds))), jit_compile=False)
    history = model.fit(ds.dataset(), epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    assert "hamiltonian_mae_onsite" in history.history and "hamiltonian_mae_offsite" in history.history
    # after fit, the readouts were solved by least squares on the fit_statistics graphs: no worse than Adam's
    on, off = history.history["readout_rms"]["hamiltonian"]
    assert 0 < on < 1e-2 and 0 < off < 1e-2
    pred_train = np.stack(model.predict_matrices(train))
    assert HamiltonianModel.from_config(model.get_config()).refit_readout
    assert not HamiltonianModel(basis, 4.0, refit_readout=False).refit_readout
    assert np.sqrt(np.mean((pred_train - np.stack([g["hamiltonian"] for g in train])) ** 2)) < 2 * max(on, off)
    b = pad_batch(batch_graphs(test), 3 * len(test) + 1, 6 * len(test), len(test) + 1)
    pred = np.asarray(model({k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()})["hamiltonian"])[:-1]
    true = np.stack([g["hamiltonian"] for g in test])
    mean = np.mean([g["hamiltonian"] for g in train], axis=0)
    mae, mae_mean = np.abs(pred - true).mean(), np.abs(mean - true).mean()
    print("held-out MAE / MAE of the mean:", mae / mae_mean)
    assert mae < 0.3 * mae_mean, (mae, mae_mean)


def test_single_example_fitted_to_micro_hartree_in_any_orientation_and_scf_from_it():
    """The seed's experiment with the model's defaults: one conformation, one orientation."""
    from kerase3 import o3
    from kerase3.io import pyscf as k3pyscf

    z = np.array([8, 1, 1])
    pos = np.array([[0.0, 0.0, 0.02], [0.03, 0.75, 0.6], [-0.02, -0.77, 0.57]])
    mol = k3pyscf.make_molecule(z, pos, basis="def2-svp")
    basis = k3pyscf.orbital_basis(mol)
    F = k3pyscf.compute_matrices(mol)["fock"]
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=4.0)
    graphs = hamiltonian_graphs(basis, z, [pos], 4.0, hamiltonian=[F])
    model.fit_statistics(graphs)
    before = np.sqrt(np.mean((model.predict_matrix(z, pos) - F) ** 2))
    residuals = model.fit_readout(graphs)
    assert max(residuals["hamiltonian"]) < 5e-6
    rmse = np.sqrt(np.mean((model.predict_matrix(z, pos) - F) ** 2))
    assert rmse < 10e-6 < before
    for sign in (1, -1):
        R = sign * o3.rand_matrix(seed=2)
        D = basis.rotation_matrix(z, R)
        assert np.sqrt(np.mean((model.predict_matrix(z, pos @ R.T) - D @ F @ D.T) ** 2)) < 10e-6
    # SCF from the prediction: converged at once, same energy as from PySCF's default guess
    ours, default = k3pyscf.run_scf(mol, model.predict_matrix(z, pos)), k3pyscf.run_scf(mol)
    assert ours["cycles"] < default["cycles"]
    assert abs(ours["energy"] - default["energy"]) < 1e-8 and abs(ours["guess_energy"] - ours["energy"]) < 1e-6
    dm = k3pyscf.density_from_fock(F, mol.intor("int1e_ovlp"), 5)
    assert np.trace(dm @ mol.intor("int1e_ovlp")) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="n_occupied"):
        k3pyscf.density_from_fock(F, mol.intor("int1e_ovlp"), 0)


def test_single_example_of_a_tetrahedral_molecule_with_the_defaults():
    """Methane at Td symmetry: carbon's features have no l = 1, 2 parts, and the 3-fold parts of its
    C-H blocks need l = 3 features (the default lmax is at least 3; with lmax=2 the fit fails)."""
    from kerase3.io import pyscf as k3pyscf

    z = np.array([6, 1, 1, 1, 1])
    pos = 0.63 * np.array([[0, 0, 0], [1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]], float)
    mol = k3pyscf.make_molecule(z, pos, basis="cc-pvdz")
    basis = k3pyscf.orbital_basis(mol)
    F = k3pyscf.compute_matrices(mol)["fock"]
    graphs = hamiltonian_graphs(basis, z, [pos], 4.0, hamiltonian=[F])
    keras.utils.set_random_seed(0)
    model = HamiltonianModel(basis, cutoff=4.0)
    assert model.lmax == 3
    model.fit_statistics(graphs)
    model.fit_readout(graphs)
    assert np.sqrt(np.mean((model.predict_matrix(z, pos) - F) ** 2)) < 10e-6
    low = HamiltonianModel(basis, cutoff=4.0, lmax=2, mul=8, mul_pair=8)
    low.fit_statistics(graphs)
    assert max(low.fit_readout(graphs)["hamiltonian"]) > 1e-4


def test_hamiltonian_graphs_and_statistics_refuse_bad_matrices():
    z, pos = WATER
    good = np.eye(24)
    bad = good.copy()
    bad[3, 4] = bad[4, 3] = np.nan
    with pytest.raises(ValueError, match="3 hamiltonian matrices for 2 conformations"):
        hamiltonian_graphs(BASIS, z, [pos, pos], 4.0, hamiltonian=[good, good, good])
    with pytest.raises(ValueError, match=r"hamiltonian\[1\] is not finite"):
        hamiltonian_graphs(BASIS, z, [pos, pos], 4.0, hamiltonian=[good, bad])
    graphs = hamiltonian_graphs(BASIS, z, [pos, pos], 4.0, hamiltonian=[good, good])
    graphs[1]["hamiltonian"] = bad  # made by hand, past the checks above
    model = HamiltonianModel(BASIS, cutoff=4.0, mul=4, layers=1, mul_pair=2)
    with pytest.raises(ValueError, match="hamiltonian of graph 1 is not finite"):
        model.fit_statistics(graphs)


@requires_tf
def test_refit_readout_callback_ends_fit_with_the_least_squares_readouts():
    """RefitReadout: given explicitly or added by refit_readout=True (default_callbacks), fit ends with
    fit_readout on the graphs; the history holds its residuals."""
    from kerase3.models import RefitReadout

    z, pos = WATER
    rng = np.random.default_rng(0)
    mats = []
    for _ in range(3):
        m = rng.normal(size=(BASIS.n_orbitals_of(np.array(z)),) * 2)
        mats.append(m + m.T)
    confs = [np.asarray(pos) + rng.normal(0, 0.05, np.shape(pos)) for _ in range(3)]
    graphs = hamiltonian_graphs(BASIS, z, confs, 4.0, hamiltonian=mats)
    ds = GraphDataset(graphs, batch_size=3, targets=("hamiltonian",), extra_inputs=("orbital_mask",))
    for explicit in (True, False):
        keras.utils.set_random_seed(0)
        model = HamiltonianModel(BASIS, cutoff=4.0, mul=4, num_interactions=1, mul_pair=4, radial_neurons=(8,),
                                 refit_readout=not explicit)
        model.fit_statistics(graphs)
        added = model.default_callbacks()
        assert [type(cb) for cb in added] == ([] if explicit else [RefitReadout])
        model.compile(optimizer="adam", jit_compile=False)
        history = model.fit(ds.dataset(), epochs=1, verbose=0, callbacks=[RefitReadout(graphs)] if explicit else None)
        on, off = history.history["readout_rms"]["hamiltonian"]
        np.testing.assert_allclose((on, off), model.fit_readout(graphs)["hamiltonian"], rtol=1e-5)
