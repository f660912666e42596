"""Every registered experiment's quick preset runs, writes its figures and passes its own checks.

Slow (minutes in all): run with ``python -m pytest -q -m slow tests/test_experiments_quick.py``.
"""
import pytest

from sparsejax.reproduce import registry as experiments_registry
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(experiments_registry.EXPERIMENTS))
def test_quick_preset(name, tmp_path):
    mod = experiments_registry.load_experiment(name)
    result = mod.run(True, tmp_path, 0)
    assert result["name"] == name
    for fig in result.get("figures", []):
        assert (tmp_path / fig).is_file(), fig
    assert result["passed"], result.get("measured")
    assert result["preset"] == "quick" and result["claim_shown"] in (True, False, None)
