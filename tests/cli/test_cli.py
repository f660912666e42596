"""The ``sparsejax`` console script: info, reproduce --list, a quick reproduction, and error handling."""
import json
import subprocess
import sys

import pytest

import sparsejax
from sparsejax.cli import commands as cli
from sparsejax.reproduce import experiment, report
from sparsejax.reproduce import registry as experiments_registry
from sparsejax.reproduce.experiment import Experiment, experiment_main, select_preset


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == sparsejax.__version__


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


def test_helpers_stay_importable_from_the_report_module():
    assert report.experiment_main is experiment.experiment_main
    assert report.select_preset is experiment.select_preset and report.save_figure is experiment.save_figure


def test_experiment_helper_result_keeps_ran_and_claim_apart(tmp_path, capsys):
    """``Experiment``: the preset (default, --quick, --preset), the output folder, the result's fields with the two
    verdicts kept apart, the JSON and the exit status; the report says PASS only when the claim is shown."""
    toy = Experiment("toy", "a toy", "  Adds one.  ", {"quick": {"n": 1}, "full": {"n": 5}})

    def run(quick, out_dir, seed=0, preset=None):
        trial = toy.start(quick, preset, out_dir / "sub", seed)
        total = trial.config["n"] + 1
        return toy.result(trial, measured={"total": total}, predicted={"total": "n + 1"}, figures=[],
                          passed=True, claim_shown=total > 2)

    assert toy.main(run, ["--quick", "--out", str(tmp_path), "--seed", "4"]) == 0
    res = json.loads((tmp_path / "toy.json").read_text())
    assert {k: res[k] for k in ("name", "title", "description", "preset", "seed", "passed", "claim_shown")} == {
        "name": "toy", "title": "a toy", "description": "Adds one.", "preset": "quick", "seed": 4,
        "passed": True, "claim_shown": False}
    assert res["measured"] == {"total": 2} and res["seconds"] >= 0 and (tmp_path / "sub").is_dir()
    assert toy.main(run, ["--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "toy.json").read_text())["preset"] == "full"
    capsys.readouterr()
    ran, shown = run(True, tmp_path), run(False, tmp_path)
    assert [report.verdict(r) for r in (ran, shown)] == ["RAN", "PASS"]
    assert report.verdict({"passed": False, "claim_shown": True}) == "FAIL"
    assert report.verdict({"passed": True, "error": "boom"}) == "ERROR"
    html = report.write_report([ran, shown], tmp_path / "report").read_text()
    assert "RAN" in html and "PASS" in html and "claim shown" in html
    with pytest.raises(ValueError, match="preset must be one of"):
        toy.start(False, "short", tmp_path)


def test_every_experiment_has_the_full_preset_on_the_command_line(monkeypatch, capsys, tmp_path):
    """``--preset full`` reaches every experiment (each defines it); ``--preset short`` only the two that have it."""
    seen = []
    real = experiments_registry.load_experiment

    def load(name):
        mod = real(name)
        monkeypatch.setattr(mod, "run", lambda quick, out_dir, seed=0, preset=None, name=name: seen.append(
            (name, quick, preset)) or {"name": name, "passed": True, "claim_shown": True, "seconds": 0.0})
        return mod

    monkeypatch.setattr(cli, "load_experiment", load)
    assert cli.main(["reproduce", "--preset", "full", "--out", str(tmp_path)]) == 0
    assert seen == [(n, False, "full") for n in experiments_registry.EXPERIMENTS]
    assert cli.main(["reproduce", "bp_stability", "--preset", "short", "--out", str(tmp_path)]) == 2
    assert "mnist_classification, adversarial" in capsys.readouterr().err
