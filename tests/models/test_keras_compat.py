"""The Keras private names kerase3 relies on (all in kerase3/models/_keras_compat.py) exist in the
installed Keras: an upgrade that moves one fails here, by name, instead of in a training run."""

import ast
import os

import keras
import pytest

from kerase3.models import Potential
from kerase3.models._keras_compat import KERAS_PRIVATE_NAMES

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "kerase3")


@pytest.mark.parametrize("owner, name", KERAS_PRIVATE_NAMES)
def test_keras_still_has_the_private_name(owner, name):
    model = Potential([1], cutoff=2.0, mul=2, lmax=1, num_interactions=1, number_of_basis=4, radial_neurons=(4,))
    model.compile(optimizer="adam")
    obj = model if owner == "keras.Model" else model.encoder.edges
    assert hasattr(obj, name) or hasattr(type(obj), name), f"Keras {keras.__version__} has no {owner}.{name}"


def test_only_the_compat_module_names_keras_internals():
    """Private Keras names (those listed, and ``keras.src``) appear in one module of kerase3."""
    names = {n for _, n in KERAS_PRIVATE_NAMES} | {"src"}
    found = set()
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                tree = ast.parse(open(path, encoding="utf-8").read())
                for node in ast.walk(tree):
                    text = node.attr if isinstance(node, ast.Attribute) else node.value if isinstance(node, ast.Constant) \
                        else node.name if isinstance(node, ast.FunctionDef) else None
                    if isinstance(text, str) and (text in names - {"src"} or text.startswith("keras.src")):
                        found.add(os.path.relpath(path, ROOT))
    assert found == {os.path.join("models", "_keras_compat.py")}, found


def test_symbolic_build_without_a_batch_under_a_strategy(monkeypatch):
    """SymbolicBuildWithoutBatch: under a distribution strategy a built model builds only its compile
    state, without calling itself on a batch averaged over the replicas."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow's distribution strategies")
    from kerase3.models._keras_compat import SymbolicBuildWithoutBatch

    assert issubclass(Potential, SymbolicBuildWithoutBatch)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = Potential([1], cutoff=2.0, mul=2, lmax=1, num_interactions=1, number_of_basis=4, radial_neurons=(4,))
        model.build()
        model.compile(optimizer="adam")
    calls = []
    monkeypatch.setattr(Potential, "call", lambda self, *a, **k: calls.append(1))
    model._maybe_symbolic_build(data_batch=None)
    assert not calls and model.optimizer.built
