"""The examples in the public docstrings run and give what they show (doctest).

Every module of the package is collected, so a new op's examples run without editing this
file; the modules in HAVE_EXAMPLES must keep at least one."""
import doctest
import importlib
import pkgutil

import pytest

import imkern

SKIP = ("imkern.bench", "imkern.__main__")
OPTIONAL = {"imkern.torch": "torch", "imkern.dask": "dask.array", "imkern.jax": "jax"}
HAVE_EXAMPLES = {"imkern.filters._linear", "imkern.nn._conv2d", "imkern.nn._linear", "imkern.nn._pool2d",
                 "imkern.nn._activations", "imkern.nn._softmax", "imkern.nn._cross_entropy",
                 "imkern.nn._batch_norm", "imkern.nn._dropout", "imkern.nn.layers",
                 "imkern.color", "imkern.transform._basic", "imkern.transform._tensor", "imkern.io"}
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(imkern.__path__, "imkern.")
    if not m.name.startswith(SKIP)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    for prefix, dep in OPTIONAL.items():  # framework modules: skipped without their framework
        if name == prefix or name.startswith(prefix + "."):
            pytest.importorskip(dep)
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name in HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} has no examples"


def test_listed_modules_exist():
    assert HAVE_EXAMPLES <= set(MODULES)
