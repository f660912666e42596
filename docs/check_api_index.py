"""After a build, check that every public name of ``sparsejax`` (its ``__all__``) is documented in the site.

Usage: ``python docs/check_api_index.py BUILD_DIR`` (exit 1 listing the names that have no entry). A function or
class counts as documented where it is defined (``module.qualname``), a module by its page anchor; a constant is
documented by the module that defines it.
"""
import importlib
import pathlib
import re
import sys
import types

import sparsejax


def documented_ids(build: pathlib.Path) -> set:
    ids = set()
    for page in build.rglob("*.html"):
        ids |= set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
    return ids


def _resolves_to(dotted: str, obj) -> bool:
    """Whether the documented id ``package.module.name`` is the object (a re-export documented by its public
    module, for names defined in a private one)."""
    module, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr, None) is obj
    except ImportError:
        return False


def missing_names(ids: set) -> list:
    missing = []
    for name in sparsejax.__all__:
        obj = getattr(sparsejax, name)
        if isinstance(obj, types.ModuleType):
            key = f"module-{obj.__name__}"
        elif hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            key = f"{obj.__module__}.{obj.__qualname__}"
        else:
            continue                                  # a constant: its module's page documents it
        if key not in ids and not any(_resolves_to(i, obj) for i in ids if i.endswith("." + name)):
            missing.append(f"{name} ({key})")
    return missing


if __name__ == "__main__":
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build")
    missing = missing_names(documented_ids(build))
    if missing:
        print("public names missing from the API reference:\n  " + "\n  ".join(missing))
        sys.exit(1)
    print(f"every public name of sparsejax ({len(sparsejax.__all__)}) is in the API reference")
