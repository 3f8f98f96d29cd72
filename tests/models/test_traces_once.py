"""kerase3 models trace their train step once: TracesOnce builds the model's weights and the
optimizer's slots before Keras traces the step (TensorFlow retraces a function that created
variables, which doubled the wait for the first step)."""

import keras
import numpy as np
import pytest

from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.models import Potential
from kerase3.models._training import TracesOnce


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the retrace is TensorFlow's")
def test_fit_on_a_never_called_model_traces_the_step_once():
    assert issubclass(Potential, TracesOnce)
    water = graph_from_arrays(np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), [8, 1, 1], 3.0)
    water["energy"], water["forces"] = -1.0, np.zeros((3, 3))
    b = pad_batch(batch_graphs([water]), 4, 8, 2)
    x = {k: b[k] for k in ("positions", "atomic_numbers", "senders", "receivers", "shifts", "cell", "node_graph",
                           "node_mask", "graph_mask", "n_node")}
    y = {"energy": b["energy"].astype("float32"), "forces": b["forces"].astype("float32")}
    model = Potential(species=[1, 8], cutoff=3.0, mul=4, layers=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    traces = []
    call = model.call

    def counting_call(*args, **kwargs):
        traces.append(1)
        return call(*args, **kwargs)

    model.call = counting_call
    assert not model.built and not model.optimizer.built
    model.train_on_batch(x, y)
    assert len(traces) == 1  # without TracesOnce: 2 (weights and Adam's slots made inside the first trace)
    assert model.optimizer.built
