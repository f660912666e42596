"""Sphinx configuration of the sparsejax documentation site (build: ``python -m sphinx -W -b html docs docs/_build``)."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("_ext"))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from sparsejax import __version__  # noqa: E402

project = "sparsejax"
author = "the sparsejax developers"
copyright = "2026, the sparsejax developers"
release = version = __version__

extensions = [
    "sphinx.ext.autodoc",        # API reference from the docstrings
    "sphinx.ext.napoleon",       # Google-style Args / Returns / Raises sections
    "sphinx.ext.mathjax",        # the maths pages
    "myst_parser",               # the narrative pages are Markdown
    "plain_maths",               # docs/_ext: the plain-text maths of the docstrings rendered safely
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "none"           # the signatures are long; the Args sections say the types
# members defined in each module (a re-export is documented where it is defined, once)
autodoc_default_options = {"members": True, "ignore-module-all": True, "show-inheritance": False,
                           # scikit-learn generates these metadata-routing setters on every estimator class
                           # (sparsejax.sklearn); their docstrings refer to scikit-learn's own glossary
                           "exclude-members": "set_fit_request, set_score_request, set_transform_request, "
                                              "set_partial_fit_request, set_predict_request, "
                                              "set_inverse_transform_request, set_output"}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True           # NamedTuple fields: the Attributes section, not a second description
napoleon_custom_sections = [("Example", "examples_style"), ("Examples", "examples_style")]

html_theme = "alabaster"
html_title = f"sparsejax {version}"
html_static_path = []

# napoleon links a bare word in a Returns section ("k: the number of ...") to whichever attribute is named k;
# several classes have such fields, and an ambiguous link is not an error in the text
suppress_warnings = ["ref.python"]
