"""Compiled XLA programs are kept on disk (on from a model's first compile, never at import) and
the directory is tagged with the backend, its version and the CPU."""

import os
import subprocess
import sys

import keras
import pytest

SCRIPT = """
import os, sys
import numpy as np
import kerase3.backend as b
import keras
from kerase3.layers import Linear
assert "TF_XLA_FLAGS" not in os.environ  # importing kerase3 turns nothing on
cache = b.default_compilation_cache()  # what a model's first compile calls
layer = Linear("4x0e + 2x1o", "3x0e + 1x1o")
x = np.ones((5, 10), np.float32)
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf
    out = tf.function(layer, jit_compile=True)(x)
else:
    import jax
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    layer.build((None, 10))
    out = jax.jit(lambda w, a: layer.stateless_call([w], [], a)[0])(layer.weights[0].value, x)
print(cache)
"""


@pytest.mark.skipif(keras.backend.backend() not in ("tensorflow", "jax"), reason="XLA backends only")
def test_programs_are_written_to_the_cache(tmp_path):
    env = dict(os.environ, KERASE3_COMPILATION_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / "cache")
    assert os.listdir(tmp_path / "cache"), "no compiled program was written"


def test_off_and_user_setting_respected(tmp_path, monkeypatch):
    from kerase3 import backend

    assert backend.default_compilation_cache() is None  # the suite turns it off (tests/conftest.py)
    if keras.backend.backend() == "tensorflow":
        monkeypatch.setenv("TF_XLA_FLAGS", f"--tf_xla_persistent_cache_directory={tmp_path}")
        assert backend.enable_compilation_cache(str(tmp_path / "other")) is None  # the user's directory wins
        assert not (tmp_path / "other").exists()
    tag = backend._machine_tag()
    assert tag.startswith(keras.backend.backend() + "-")


def test_first_compile_of_a_model_turns_the_cache_on(monkeypatch):
    from kerase3 import backend
    from kerase3.models import Potential

    calls = []
    monkeypatch.setattr(backend, "default_compilation_cache", lambda: calls.append(1))
    model = Potential([1], cutoff=2.0, mul=2, lmax=1, num_interactions=1, number_of_basis=4, radial_neurons=(4,))
    model.compile(optimizer="adam")
    model.make_predict_function()
    model.make_test_function()
    model.make_train_function()
    assert len(calls) == 4  # construction, then each compile


MODEL_SCRIPT = """
import os, time
import numpy as np, keras
from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.models import Potential
model = Potential([29], cutoff=4.0, mul=4, lmax=1, num_interactions=1, number_of_basis=4, radial_neurons=(8,))
g = graph_from_arrays(np.random.default_rng(0).uniform(0, 5, (6, 3)), [29] * 6, 4.0, energy=1.0, forces=np.zeros((6, 3)))
b = pad_batch(batch_graphs([g]), 8, 64, 2)
x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items() if k not in ("energy", "forces")}
y = {"energy": b["energy"].astype("float32"), "forces": b["forces"].astype("float32")}
model.compile(optimizer="adam", jit_compile=True)
model.train_on_batch(x, y)
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow reads TF_XLA_FLAGS once per process")
def test_a_models_train_step_is_written_to_the_cache(tmp_path):
    """The user's path (construct, compile, first step), not the cache turned on by hand first:
    TensorFlow reads TF_XLA_FLAGS with the first variable, which a model creates when constructed."""
    env = dict(os.environ, KERASE3_COMPILATION_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-c", MODEL_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.listdir(tmp_path / "cache"), "the model's compiled train step was not written"
