import doctest

import pytest

from kerase3.o3 import _irreps


@pytest.mark.parametrize("module", [_irreps])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
