"""The examples in the public docstrings run and give what they show (doctest)."""
import doctest
import importlib

import pytest

MODULES = ["imkern.filters", "imkern.nn._conv", "imkern.nn._pool", "imkern.nn._act", "imkern.nn._norm", "imkern.nn.layers"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no examples"
