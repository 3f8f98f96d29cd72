import pytest

from ..doctest_modules import run_doctests


@pytest.mark.parametrize("module", ["kerase3.ops.tensor_product", "kerase3.ops.plan", "kerase3.ops.norms", "kerase3.backend"])
def test_ops_examples_run(module):
    attempted, failed = run_doctests(module)
    assert attempted > 0 and failed == 0
