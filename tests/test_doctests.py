import pytest

from .doctest_modules import run_doctests


@pytest.mark.parametrize("module", ["kerase3.models.potential", "kerase3.models.gated_conv_network", "kerase3.models.hamiltonian",
                                    "kerase3.heads.cartesian", "kerase3.heads.orbital", "kerase3.testing"])
def test_model_head_and_testing_examples_run(module):
    attempted, failed = run_doctests(module)
    assert attempted > 0 and failed == 0
