"""What the wheel carries: every subpackage of the source tree, the experiments, the bundled data, the licence
files and ``py.typed`` (the wheel itself is built and run from a fresh environment by ``.ci/wheel_check``)."""
import pathlib

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = CONFIG["tool"]["setuptools"]


def test_every_subpackage_is_listed_for_the_wheel():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sparsejax").rglob("__init__.py")}
    listed = set(SETUPTOOLS["packages"])
    assert listed == on_disk | {"sparsejax.experiments"}, "pyproject [tool.setuptools] packages is out of date"


def test_the_experiments_install_as_a_subpackage():
    assert SETUPTOOLS["package-dir"]["sparsejax.experiments"] == "experiments"
    assert (ROOT / "experiments" / "__init__.py").is_file()
    import sparsejax.experiments.bp_stability as script          # the editable install maps the folder
    assert pathlib.Path(script.__file__).resolve() == ROOT / "experiments" / "bp_stability.py"


def test_licence_metadata_and_notices():
    project = CONFIG["project"]
    assert project["license"] == "Apache-2.0"                   # an SPDX expression
    assert set(project["license-files"]) == {"LICENSE", "THIRD_PARTY_NOTICES.md"}
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    notices = (ROOT / "THIRD_PARTY_NOTICES.md").read_text()
    bundled = {p.parent.name for p in (ROOT / "sparsejax" / "datasets" / "files").rglob("*") if p.is_file()}
    assert bundled == {"mnist", "dictionaries", "images"}       # a new bundled folder needs its notice below
    for licence in ("CC BY-SA 3.0", "BSD 3-Clause", "CC0"):
        assert licence in notices


def test_typed_marker_and_data_are_package_data():
    data = SETUPTOOLS["package-data"]
    assert "py.typed" in data["sparsejax"] and (ROOT / "sparsejax" / "py.typed").is_file()
    assert data["sparsejax.datasets"] == ["files/*/*"]


def test_one_version_and_a_changelog_entry():
    from sparsejax import __version__
    from sparsejax._version import VERSION
    assert CONFIG["project"]["dynamic"] == ["version"] and __version__ == VERSION
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text() or f"## [{VERSION}]" in (
        ROOT / "CHANGELOG.md").read_text()
