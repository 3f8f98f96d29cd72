import os

# the suite compiles every program afresh: xdist workers share no on-disk XLA cache
os.environ.setdefault("KERASE3_COMPILATION_CACHE", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")


@pytest.fixture
def kernel_opts(request):
    """``kernel_opts(edge_chunk=4, ...)``: `kerase3.ops.kernel_options` for the rest of the test."""
    from kerase3.ops import kernel_options

    def set_options(**overrides):
        block = kernel_options(**overrides)
        block.__enter__()
        request.addfinalizer(lambda: block.__exit__(None, None, None))

    return set_options


@pytest.fixture(scope="session")
def o3_ref():
    """e3nn 0.6 numbers made by tests/reference/make_o3_fixtures.py."""
    with np.load(os.path.join(REFERENCE, "o3_e3nn.npz")) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def layers_ref():
    """e3nn 0.6 layer numbers made by tests/reference/make_layer_fixtures.py."""
    with np.load(os.path.join(REFERENCE, "layers_e3nn.npz")) as f:
        return {k: f[k] for k in f.files}
