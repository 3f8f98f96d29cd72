"""Every serialisable kerase3 class has a `.keras` (safe_mode=True) round trip somewhere in the suite."""

import keras
import numpy as np

import kerase3.heads  # noqa: F401 - registers the classes
import kerase3.layers  # noqa: F401
import kerase3.models  # noqa: F401 - registers the classes
from kerase3 import o3
from kerase3.heads import OrbitalTensorHead
from kerase3.io import OrbitalBasis

# class -> the test that saves and reloads it (kerase3.testing.check_layer saves a .keras file of a model around the layer)
COVERED = {
    "AtomEmbedding": "tests/layers/test_convolution.py", "BatchNorm": "tests/layers/test_nonlinearities.py",
    "CartesianTensorHead": "tests/heads/test_cartesian_head.py", "Convolution": "tests/layers/test_convolution.py",
    "Dropout": "tests/layers/test_nonlinearities.py", "EdgeEmbedding": "tests/layers/test_encoder.py",
    "InteractionStack": "tests/layers/test_encoder.py", "ChannelwiseTensorProduct": "tests/heads/test_complete_heads.py", "ElementwiseTensorProduct": "tests/layers/test_tensor_product.py",
    "Extract": "tests/layers/test_nonlinearities.py", "FullTensorProduct": "tests/layers/test_tensor_product.py",
    "FullyConnectedNet": "tests/layers/test_radial_and_sh.py", "FullyConnectedTensorProduct": "tests/layers/test_tensor_product.py",
    "Gate": "tests/layers/test_nonlinearities.py", "GatedConvNetwork": "tests/models/test_gated_conv_network.py",
    "HamiltonianHead": "tests/models/test_hamiltonian.py (inside HamiltonianModel)",
    "HamiltonianModel": "tests/models/test_hamiltonian.py", "Linear": "tests/layers/test_linear.py",
    "Norm": "tests/layers/test_nonlinearities.py", "NormActivation": "tests/layers/test_nonlinearities.py",
    "OrbitalBlocks": "tests/heads/test_orbital_heads.py", "OrbitalTensorHead": "this file",
    "Potential": "tests/models/test_potential.py", "RadialBasis": "tests/layers/test_radial_and_sh.py",
    "S2Activation": "tests/layers/test_s2_activation.py", "SphericalHarmonics": "tests/layers/test_radial_and_sh.py",
    "TensorProduct": "tests/layers/test_tensor_product.py", "TensorSquare": "tests/layers/test_tensor_product.py",
    "SymmetricContraction": "tests/layers/test_symmetric_contraction.py", "MACE": "tests/models/test_mace.py",
    "GraphEncoder": "tests/layers/test_encoder.py", "MACEInteraction": "tests/layers/test_mace_blocks.py",
    "MACEProduct": "tests/layers/test_mace_blocks.py", "MACEReadout": "tests/layers/test_mace_blocks.py",
}


def test_every_registered_class_is_covered():
    registered = {k.split(">", 1)[1] for k in keras.saving.get_custom_objects() if k.startswith("kerase3>")}
    assert registered == set(COVERED), (registered ^ set(COVERED))


def test_orbital_tensor_head_round_trip(tmp_path):
    basis = OrbitalBasis({8: [0, 1], 1: [0]}, "orca")

    class Wrapper(keras.Model):
        def __init__(self, head, **kwargs):
            super().__init__(**kwargs)
            self.head = head

        def call(self, x):
            return self.head(x["h"], x["sh"], x["radial"], x["s"], x["r"], x["z"], x["g"], num_graphs=2, num_orbitals=8,
                             node_attr=x["attr"])

    rng = np.random.default_rng(0)
    x = dict(h=rng.normal(size=(4, 12)), sh=rng.normal(size=(4, 9)), radial=rng.normal(size=(4, 3)), s=np.array([0, 1, 2, 3]),
             r=np.array([1, 0, 3, 2]), z=np.array([8, 1, 8, 0]), g=np.array([0, 0, 1, 1]), attr=rng.normal(size=(4, 2)))
    head = OrbitalTensorHead(basis, "4x0e+1x1o+1x2e", "0e+1o+2e", 3, symmetry="none", mul_pair=2, irreps_node_attr="2x0e",
                             dtype="float64")
    model = Wrapper(head)
    ref = np.asarray(model(x))
    config = keras.saving.serialize_keras_object(head)
    clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert clone.get_config() == head.get_config() and clone.basis == basis
    clone_model = Wrapper(clone)
    clone_model(x)
    clone_model.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone_model(x)), ref, atol=1e-12)
    assert str(o3.Irreps(head.irreps_blocks)) == str(clone.irreps_blocks)
