"""Streaming graphs through TFRecord shards: the batches equal in-memory batches of the same graphs."""

import keras
import numpy as np
import pytest

from kerase3.graph import GraphRecordDataset, GraphStatistics, batch_graphs, make_graphs, pad_batch, write_graph_records

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.data pipelines")
ase = pytest.importorskip("ase")


def frames(n=7):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    out = []
    for i in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 1 + i % 2))
        a.symbols[0] = "Au"
        a.rattle(0.05, seed=i)
        a.calc = EMT()
        a.get_potential_energy()
        out.append(a)
    return out


def test_records_from_an_extxyz_file_equal_in_memory_batches(tmp_path):
    import ase.io

    fr = frames()
    ase.io.write(tmp_path / "train.extxyz", fr)
    stats = write_graph_records(tmp_path / "train.extxyz", tmp_path / "rec", cutoff=3.0, num_shards=1)
    graphs = make_graphs(fr, 3.0)
    ds = GraphRecordDataset(tmp_path / "rec", batch_size=3, shuffle_buffer=0)
    assert len(ds) == 3 and stats.n_structures == 7
    got = list(ds.dataset())
    assert len(got) == 3
    for k, (x, y) in enumerate(got):
        chunk = graphs[3 * k: 3 * k + 3]
        b = pad_batch(batch_graphs(chunk), ds.n_node, ds.n_edge, 4)
        for key in x:
            np.testing.assert_allclose(x[key].numpy(), b[key], rtol=1e-6, atol=1e-6, err_msg=key)
            assert tuple(x[key].shape) == b[key].shape  # static shapes, every batch
        np.testing.assert_allclose(y["energy"].numpy(), b["energy"], rtol=1e-6)
        np.testing.assert_allclose(y["forces"].numpy(), b["forces"], rtol=1e-5, atol=1e-6)
    # statistics of the stream = statistics of the list
    ref = GraphStatistics.of(graphs)
    for a, b in zip(ds.statistics.energy_statistics([29, 79]), ref.energy_statistics([29, 79])):
        np.testing.assert_allclose(a, b, rtol=1e-8)  # extxyz stores text
    assert ds.statistics.avg_num_neighbors == ref.avg_num_neighbors


def test_shuffled_shards_train_a_potential_and_refuse_bad_input(tmp_path):
    from kerase3.models import Potential

    fr = frames(8)
    write_graph_records(fr, tmp_path / "rec", cutoff=3.0, num_shards=3)
    ds = GraphRecordDataset(tmp_path / "rec", batch_size=2, shuffle_buffer=4, seed=1)
    energies = sorted(float(e) for _, y in ds.dataset() for e in y["energy"].numpy()[:-1] if e != 0)
    assert np.allclose(energies, sorted(a.get_potential_energy() for a in fr), rtol=1e-6)  # each structure once
    keras.utils.set_random_seed(0)
    model = Potential([29, 79], cutoff=3.0, mul=2, lmax=1, layers=1, number_of_basis=4, radial_neurons=(4,))
    stats = model.fit_statistics(ds.statistics)
    assert stats["avg_num_neighbors"] > 1
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    h = model.fit(ds.dataset(), epochs=2, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    with pytest.raises(Exception, match="n_edge"):
        list(GraphRecordDataset(tmp_path / "rec", batch_size=2, n_edge=16).dataset())
    with pytest.raises(ValueError, match="were not written"):
        GraphRecordDataset(tmp_path / "rec", batch_size=2, targets=("stress",))
    with pytest.raises(ValueError, match="metadata.json"):
        GraphRecordDataset(tmp_path, batch_size=2)
    bad = [dict(positions=np.zeros((1, 3)), atomic_numbers=[29], energy=np.nan, forces=np.zeros((1, 3)))]
    with pytest.raises(ValueError, match="structure 0.*not finite"):
        write_graph_records(bad, tmp_path / "bad", cutoff=3.0)
