"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).

The API reference is generated from the docstrings (autodoc + autosummary over each public
module's ``__all__``); Markdown pages go through MyST. imkern itself must be importable (an
installed wheel, or ``PYTHONPATH=python`` after ``.ci/dev-build``): conf.py adds ``python/`` to
the path when the compiled module is there. The performance plot is drawn at build time from
the newest table of benchmarks/RESULTS.md, so the page and the figure never disagree.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
_src = os.path.join(ROOT, "python")
if os.path.isdir(os.path.join(_src, "imkern")) and any(
    f.startswith("_core") for f in os.listdir(os.path.join(_src, "imkern"))
):
    sys.path.insert(0, _src)
sys.path.insert(0, HERE)

import imkern

project = "imkern"
author = "the imkern developers"
copyright = "the imkern developers"
release = imkern.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "myst_parser",
    "_perfplot",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]

# API reference: one page per public module (docs/api/*.rst) lists ``__all__``; autosummary
# writes one stub page per function or class under docs/api/generated/ (not checked in).
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_mock_imports = ["cupy", "ml_dtypes"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

intersphinx_mapping: dict = {}  # no network at build time: cross-references stay local

html_theme = "furo"
html_title = f"imkern {release}"
html_static_path: list = []
nitpicky = False

# The README and the other Markdown pages link to files of the repository (``.ci/run``,
# ``csrc/...``) that are not pages of this site; MyST would warn about each.
suppress_warnings = ["myst.xref_missing"]
