"""The ``sparsejax`` console script: info, reproduce --list, a quick reproduction, and error handling."""
import json
import subprocess
import sys

import pytest

from sparsejax.cli import commands as cli

from sparsejax.reproduce import registry as experiments_registry
def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("sparsejax", "jax", "jaxlib", "optax", "flax", "numpy", "devices", "dtype"):
        assert word in out


def test_reproduce_list(capsys):
    assert cli.main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name, path in experiments_registry.EXPERIMENTS.items():
        assert name in out
        assert experiments_registry.experiment_path(name).is_file(), path


def test_unknown_experiment_is_a_clear_error(capsys, tmp_path):
    assert cli.main(["reproduce", "no_such_experiment", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment" in err and "no_such_experiment" in err and "bp_stability" in err


def test_reproduce_quick_writes_html_and_json(tmp_path):
    assert cli.main(["reproduce", "bp_stability", "--quick", "--out", str(tmp_path), "--seed", "1"]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "bp_stability" in html and "data:image/png;base64," in html and "PASS" in html
    res = json.loads((tmp_path / "bp_stability.json").read_text())
    assert res["passed"] is True
    assert {"name", "title", "description", "measured", "predicted", "figures", "seconds",
            "environment"} <= set(res)
    assert all((tmp_path / f).is_file() for f in res["figures"])


def test_experiment_that_raises_exits_nonzero(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def run(quick, out_dir, seed=0):\n    raise RuntimeError('boom')\n")
    monkeypatch.setitem(experiments_registry.EXPERIMENTS, "bad", str(bad))
    out = tmp_path / "out"
    assert cli.main(["reproduce", "bad", "--quick", "--out", str(out)]) == 1
    assert "boom" in capsys.readouterr().err
    res = json.loads((out / "bad.json").read_text())
    assert res["passed"] is False and "RuntimeError: boom" in res["error"]
    assert "ERROR" in (out / "report.html").read_text()


def test_console_script_entry_point():
    r = subprocess.run([sys.executable, "-c", "import sys; from sparsejax.cli.commands import main; sys.exit(main())",
                        "reproduce", "--list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "omp_success" in r.stdout


def test_experiment_main_presets_and_select_preset(tmp_path, capsys):
    """``--preset NAME`` reaches run(); ``--quick`` is the quick preset; a wrong name is refused by argparse and by
    ``select_preset`` (naming the known presets)."""
    from sparsejax.reproduce.report import experiment_main, select_preset

    presets = {"quick": {"n": 1}, "short": {"n": 2}, "full": {"n": 3}}
    seen = []

    def run(quick, out_dir, seed=0, preset=None):
        tag, cfg, out = select_preset(quick, preset, presets, out_dir / "sub")
        seen.append((tag, cfg["n"], out.is_dir()))
        return {"name": "toy", "passed": tag != "full", "seconds": 0.0}

    assert experiment_main(run, "toy", "toy", argv=["--out", str(tmp_path)], presets=presets) == 0
    assert experiment_main(run, "toy", "toy", argv=["--quick", "--out", str(tmp_path)], presets=presets) == 0
    assert experiment_main(run, "toy", "toy", argv=["--preset", "full", "--out", str(tmp_path)], presets=presets) == 1
    assert seen == [("short", 2, True), ("quick", 1, True), ("full", 3, True)]
    assert json.loads((tmp_path / "toy.json").read_text())["passed"] is False
    with pytest.raises(SystemExit):
        experiment_main(run, "toy", "toy", argv=["--preset", "huge"], presets=presets)
    with pytest.raises(ValueError, match=r"preset must be one of \['full', 'quick', 'short'\], got 'huge'"):
        select_preset(False, "huge", presets, tmp_path)
    capsys.readouterr()


def test_reproduce_preset_reaches_the_experiment_and_a_missing_preset_is_refused(tmp_path, monkeypatch, capsys):
    """``--preset NAME`` calls run(..., preset=NAME) of experiments that define it; an experiment without that preset
    is refused before anything runs (exit 2, naming the experiments that have it); --quick and --preset exclude
    each other."""
    toy = tmp_path / "toy.py"
    toy.write_text("PRESETS = {'quick': {}, 'short': {}}\n"
                   "def run(quick, out_dir, seed=0, preset=None):\n"
                   "    return {'name': 'toy', 'passed': True, 'seconds': 0.0, 'measured': {'preset': preset,"
                   " 'quick': quick}}\n")
    monkeypatch.setitem(experiments_registry.EXPERIMENTS, "toy", str(toy))
    out = tmp_path / "out"
    assert cli.main(["reproduce", "toy", "--preset", "short", "--out", str(out)]) == 0
    assert json.loads((out / "toy.json").read_text())["measured"] == {"preset": "short", "quick": False}
    assert cli.main(["reproduce", "toy", "--preset", "quick", "--out", str(out)]) == 0
    assert json.loads((out / "toy.json").read_text())["measured"]["quick"] is True
    capsys.readouterr()
    assert cli.main(["reproduce", "toy", "bp_stability", "--preset", "short", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "no preset 'short' in bp_stability" in err and "mnist_classification" in err and "toy" in err
    assert not (tmp_path / "o2").exists()
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "toy", "--quick", "--preset", "short"])
