"""The layer contract of `IrrepsLayer`: Irreps attributes, their config, one input check."""

import keras
import numpy as np
import pytest

from kerase3 import layers
from kerase3.layers import IrrepsLayer
from kerase3.o3 import Irreps


class Scale(IrrepsLayer):
    def __init__(self, irreps_in, irreps_attr=None, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_attr=irreps_attr)
        self.irreps_out = self.irreps_in

    def call(self, x):
        self.check_input(x, self.irreps_in)
        return 3 * x


def test_irreps_layer_attributes_config_and_input_check():
    layer = Scale("2x0e + 1o")
    assert isinstance(layer.irreps_in, Irreps) and layer.irreps_in == "2x0e+1x1o" and layer.irreps_attr is None
    config = layer.get_config()
    assert config["irreps_in"] == "2x0e+1x1o" and config["irreps_attr"] is None
    assert Scale.from_config(config).get_config() == config
    np.testing.assert_allclose(np.asarray(layer(np.ones((2, 5)))), 3 * np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"Scale: input must have a last axis of size 5 for irreps 2x0e\+1x1o"):
        layer(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Scale: irreps_in is not valid irreps"):
        Scale("2x0q")


@pytest.mark.parametrize("cls", [layers.Linear, layers.TensorProduct, layers.Gate, layers.Norm, layers.NormActivation,
                                 layers.BatchNorm, layers.Dropout, layers.Extract, layers.S2Activation,
                                 layers.Convolution, layers.InteractionStack])
def test_irreps_layers_share_the_contract(cls):
    assert issubclass(cls, IrrepsLayer)


def test_integer_inputs_are_computed_as_floats():
    from kerase3.layers import FullyConnectedTensorProduct, Linear

    keras.utils.set_random_seed(0)
    tp = FullyConnectedTensorProduct("2x1o", "1x1o", "1x0e + 1x1e")
    lin = Linear("2x0e + 1o", "1x0e + 1o")
    x1 = np.arange(12).reshape(2, 6) - 5
    x2 = np.array([[1, 2, 3], [0, -1, 2]])
    out = np.asarray(tp(x1.astype(np.int32), x2.astype(np.int32)))
    np.testing.assert_allclose(out, np.asarray(tp(x1.astype(np.float32), x2.astype(np.float32))), rtol=1e-6)
    assert np.abs(out).max() > 0.1  # not the Clebsch-Gordan constants cast to integers
    y = np.arange(10).reshape(2, 5) - 3
    np.testing.assert_allclose(np.asarray(lin(y.astype(np.int64))), np.asarray(lin(y.astype(np.float32))), rtol=1e-6)
    # layers with nonlinearities: cast, not a TypeError
    for layer in (layers.Gate("2x0e", ["relu"], "1x0e", ["sigmoid"], "1x1o"), layers.NormActivation("2x1o", "tanh"),
                  layers.ElementwiseTensorProduct("2x1o", "2x1o"), layers.TensorSquare("2x1o")):
        xi = (np.arange(12).reshape(2, 6) - 4)[:, : layer.irreps_in.dim if hasattr(layer, "irreps_in") else 6]
        args = (xi, xi) if isinstance(layer, layers.ElementwiseTensorProduct) else (xi,)
        got = layer(*[a.astype(np.int32) for a in args])
        np.testing.assert_allclose(np.asarray(got), np.asarray(layer(*[a.astype(np.float32) for a in args])), rtol=1e-6)


def test_statistic_is_a_variable_settable_before_and_after_build():
    import keras

    from kerase3.layers.base import SharedStatistic, Statistic

    class Scale(keras.layers.Layer):
        factor = Statistic()

        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, input_shape=None):
            Scale.factor.create(self)

        def call(self, x):
            return x * Scale.factor.variable(self)

    layer = Scale(2.0, dtype="float64")
    assert layer.factor == 2.0 and not layer.weights  # a float until built
    layer.factor = 3.0
    layer.build()
    assert layer.factor == 3.0 and [w.name for w in layer.non_trainable_weights] == ["factor"]
    layer.factor = 4.0  # after build: the variable itself
    assert float(keras.ops.convert_to_numpy(layer.weights[0])) == 4.0 and float(layer(np.ones(1))[0]) == 4.0
    other = Scale()
    other.build()
    other.set_weights(layer.get_weights())  # saved with the weights
    assert other.factor == 4.0

    class Pair(keras.layers.Layer):
        factor = SharedStatistic("a", "more")

        def __init__(self):
            super().__init__()
            self.a, self.more = Scale(1.0), [Scale(1.0), Scale(1.0)]

    pair = Pair()
    pair.factor = 5.0  # sets every holder, lists included
    assert [pair.a.factor] + [s.factor for s in pair.more] == [5.0, 5.0, 5.0] and pair.factor == 5.0
    pair.more[0].factor = 6.0
    assert pair.factor == 5.0  # reads the first holder
