"""The ``sparsejax`` console script: info, reproduce --list, a quick reproduction, and error handling."""
import json
import subprocess
import sys
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax
from sparsejax import imaging
from sparsejax.cli import commands as cli
from sparsejax.cli import learn as cli_learn
from sparsejax.datasets import images as data
from sparsejax.learn import checkpoint as ckpt
from sparsejax.learn.checkpoint import CheckpointWarning
from sparsejax.learn.loop import run_loop
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


# ----------------------------------------------------------------------------------------------------
# learn / denoise / inpaint: outputs checked before computing, runs that lose nothing, learned filters reused
# ----------------------------------------------------------------------------------------------------
def _tiny_images(tmp_path):
    folder = tmp_path / "imgs"
    data.save_image(folder / "a.png", data.load_image("camera")[240:272, 240:272])
    return folder


def test_bad_output_paths_fail_before_computing(tmp_path, monkeypatch, capsys):

    def never(*a, **k):
        raise AssertionError("computed although the output cannot be written")

    for name in ("csc_denoise", "csc_inpaint"):
        monkeypatch.setattr(imaging, name, never)
    for name in ("learn_conv_dictionary", "learn_dictionary"):
        monkeypatch.setattr(cli_learn, name, never)
    afile = tmp_path / "afile.txt"
    afile.write_text("a file, not a folder")
    cases = [
        (["denoise", "camera", str(afile / "out.png")], "afile.txt is a file"),
        (["denoise", "camera", str(tmp_path / "out.txt")], "must end in .png"),
        (["denoise", "camera", str(tmp_path)], "must end in .png"),
        (["inpaint", "camera", "camera", str(afile / "x" / "out.png")], "afile.txt is a file"),
        (["learn", "--out", str(afile / "d.npz")], "afile.txt is a file"),
        (["learn", "--out", str(tmp_path / "d.png")], "--out must name a .npz"),
        (["learn", "--checkpoint-dir", str(afile / "ck"), "--out", str(tmp_path / "d")], "--checkpoint-dir"),
        (["reproduce", "bp_stability", "--quick", "--out", str(afile / "results")], "afile.txt is a file"),
    ]
    for argv, msg in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)


def _fake_learner(calls):
    """A stand-in for the learners that runs the real ``run_loop`` (checkpoints, settings) on a tiny state."""

    def learn(images, n_atoms, *a, n_steps, checkpoint_dir=None, resume=True, **kw):
        calls.append(n_steps)
        loop = run_loop(lambda x: (x + 1.0, {"loss": jnp.sum(x)}), jnp.zeros(3), n_steps,
                        checkpoint_dir=checkpoint_dir, resume=resume, progress=False)
        size = int(np.sqrt(np.asarray(images).shape[-1])) if np.asarray(images).ndim == 2 else a[0]
        return SimpleNamespace(loop=loop, filters=np.ones((n_atoms, 1, size, size), np.float32),
                               dictionary=np.ones((size * size, n_atoms), np.float32))
    return learn


@pytest.mark.parametrize("kind", ["conv", "dense"])
def test_learn_refuses_another_runs_checkpoints_and_stops_on_a_failed_write(tmp_path, monkeypatch, capsys, kind):

    calls = []
    monkeypatch.setattr(cli_learn, "learn_conv_dictionary" if kind == "conv" else "learn_dictionary",
                        _fake_learner(calls))
    imgs, ck = _tiny_images(tmp_path), tmp_path / "ck"
    base = ["learn", str(imgs), "--kind", kind, "--atoms", "4", "--size", "4", "--steps", "2", "--quiet",
            "--checkpoint-dir", str(ck)]
    assert cli.main(base + ["--lam", "0.2", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a.npz").exists() and (tmp_path / "a.png").exists()
    capsys.readouterr()
    # learn B with another lam into the same folder: refused, naming the setting, nothing written
    assert cli.main(base + ["--lam", "5", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "lam: 0.2 in the checkpoint, 5.0 in this run" in err and "--force-resume" in err
    assert "Traceback" not in err and not (tmp_path / "b.npz").exists()
    # the same settings resume; --force-resume continues the other run, with a warning naming the difference
    assert cli.main(base + ["--lam", "0.2", "--out", str(tmp_path / "a2")]) == 0
    with pytest.warns(CheckpointWarning, match="lam"):
        assert cli.main(base + ["--lam", "5", "--out", str(tmp_path / "b"), "--force-resume"]) == 0
    # a checkpoint write that fails stops the run: one line, exit status 4, no output file
    monkeypatch.setattr(ckpt, "_write_npz", lambda f, arrays: (_ for _ in ()).throw(OSError(28, "No space left")))
    argv = base[:-1] + [str(tmp_path / "ck2"), "--out", str(tmp_path / "c")]
    assert cli.main(argv) == 4
    err = capsys.readouterr().err
    assert "cannot write checkpoint" in err and "No space left" in err and "Traceback" not in err
    assert not (tmp_path / "c.npz").exists()


@pytest.mark.slow
def test_learned_conv_filters_are_a_valid_denoise_dict(tmp_path, capsys):

    imgs = _tiny_images(tmp_path)
    assert cli.main(["learn", str(imgs), "--atoms", "4", "--size", "4", "--steps", "2", "--quiet",
                     "--out", str(tmp_path / "filters")]) == 0
    noisy = data.save_image(tmp_path / "noisy.png", np.asarray(data.load_image(imgs / "a.png")))
    assert cli.main(["denoise", str(noisy), str(tmp_path / "den.png"), "--dict", str(tmp_path / "filters.npz"),
                     "--iters", "5"]) == 0
    assert data.load_image(tmp_path / "den.png").shape == (32, 32)
