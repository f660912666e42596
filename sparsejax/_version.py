"""The one source of the package version (read by pyproject.toml, ``sparsejax.__version__`` and the report)."""

VERSION = "0.1.0"
__version__ = VERSION
