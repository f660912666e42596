"""Every script of examples/ runs with --quick in a fresh Python (cwd and output in a temporary folder) and prints
the numbers that show its point; examples/README.md lists every script."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NUM = r"([-+0-9.eE]+)"


def _lam_path(out, files):
    assert "all converged: True" in out
    assert float(re.search(r"max KKT violation / lam over the path: " + NUM, out)[1]) < 1e-2
    assert "support size at lam = 1.01 lam_max: 0 " in out                   # above lam_max the codes are 0
    assert "lam_path.png" in files


def _dict_grad(out, files):
    first, last = map(float, re.search(r"loss: first " + NUM + " -> last " + NUM, out).groups())
    assert last < 0.6 * first                                                # measured: 73% lower


def _batch(out, files):
    assert "devices: 2 x cpu" in out
    assert float(re.search(r"exact support " + NUM + "%", out)[1]) > 80     # OMP on noisy k-sparse signals
    assert float(re.search(r"converged " + NUM + "%", out)[1]) > 99         # Lasso, certified by duality gap
    assert float(re.search(r"max \|sharded - unsharded\| OMP codes: " + NUM, out)[1]) < 1e-5


def _denoise(out, files):
    before, after = map(float, re.search(r"PSNR noisy " + NUM + " dB -> denoised " + NUM, out).groups())
    assert after > before + 5                                                # measured +9.4 dB
    assert "denoise.png" in files


def _inpaint(out, files):
    before, after = map(float, re.search(r"PSNR damaged " + NUM + " dB -> inpainted " + NUM, out).groups())
    assert after > before + 8                                                # measured +14.4 dB
    assert "inpaint.png" in files


def _resume(out, files):
    assert "(resumed from step 3)" in out
    assert float(re.search(r"max \|filters resumed - uninterrupted\| = " + NUM, out)[1]) <= 1e-6
    first, last = map(float, re.search(r"objective: step 1 " + NUM + r" -> step \d+ " + NUM, out).groups())
    assert last < first
    assert "filters.png" in files and "ckpt_000000006.npz" in files


def _unfolded(out, files):
    assert float(re.search(r"test accuracy after training: " + NUM + "%", out)[1]) > 30   # chance: 10%


def _layered(out, files):
    lt, lbp = map(float, re.search(r"lowest noise: exact support LT " + NUM + "%, LBP " + NUM, out).groups())
    assert lbp >= 75 and lbp > lt                                            # low contrast: LBP keeps the support
    lt1 = float(re.search(r"contrast 1.0: exact support LT " + NUM + "%", out)[1])
    assert lt1 >= 75                                                         # contrast 1: thresholding finds it too
    assert "layered_vs_bp.png" in files


CHECKS = {
    "lam_path_vmap.py": (_lam_path, []),
    "dictionary_gradient_optax.py": (_dict_grad, []),
    "batch_coding_sharded.py": (_batch, ["--devices", "2"]),
    "denoise_photo.py": (_denoise, []),
    "inpaint_photo.py": (_inpaint, []),
    "learn_conv_dictionary_resume.py": (_resume, []),
    "unfolded_ml_ista_flax.py": (_unfolded, []),
    "layered_vs_bp.py": (_layered, []),
}


def test_every_example_is_checked_and_listed():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(CHECKS), "each examples/*.py needs an entry in CHECKS"
    readme = (EXAMPLES / "README.md").read_text()
    for name in scripts:
        assert name in readme, f"examples/README.md does not list {name}"
        doc = (EXAMPLES / name).read_text()
        assert "--quick" in doc and f"python examples/{name}" in doc, f"{name}: docstring must say how to run it"


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_runs_quick(name, tmp_path):
    check, extra = CHECKS[name]
    out_dir = tmp_path / "out"
    # XLA's backend optimisation off: these tiny runs are mostly compilation (about 40% less CPU time)
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUMPY_RANK_PROMOTION="raise", MPLBACKEND="Agg",
               XLA_FLAGS="--xla_backend_optimization_level=0")
    before = sorted(p.name for p in EXAMPLES.iterdir())
    res = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--out", str(out_dir), *extra],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    files = sorted(p.name for p in out_dir.rglob("*")) if out_dir.exists() else []
    check(res.stdout, files)
    assert sorted(p.name for p in EXAMPLES.iterdir()) == before             # nothing written into the repository
