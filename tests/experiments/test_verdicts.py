"""Verdicts that mean what they say (``sparsejax.reproduce.experiment``): PASS only when the claim is shown, a run
with unconverged solves rejected, provenance recorded, measured next to predicted in aligned rows; and the claim
thresholds of the experiments, on made-up numbers (nothing is trained or solved here: fast)."""
import json

import numpy as np
import pytest

from sparsejax.reproduce import report
from sparsejax.reproduce.experiment import Experiment, converged_check, format_table, verdict, wilson_interval
from sparsejax.reproduce.registry import load_experiment

TOY = Experiment("toy", "a toy", "Adds one.", {"quick": {"n": 1}, "full": {"n": 5}})


def _run(claim, converged=None):
    def run(quick, out_dir, seed=0, preset=None):
        trial = TOY.start(quick, preset, out_dir, seed)
        rows = [{"setting": "a", "measured": 1.5, "predicted": 2.0}, {"setting": "b", "measured": None}]
        return TOY.result(trial, measured={"x": 1.5}, predicted={"x": 2.0}, figures=[], passed=True,
                          claim_shown=claim, table=rows, converged=converged)
    return run


@pytest.mark.parametrize("claim, converged, want, status", [
    (True, None, "PASS", 0), (False, None, "RAN", 0), (None, None, "RAN", 0),
    (True, {"admm": 1.0, "fista": 1.0}, "PASS", 0),
    (True, {"admm": 0.98}, "FAIL", 1), (True, {"admm": float("nan")}, "FAIL", 1)])
def test_pass_only_when_shown_and_converged(tmp_path, capsys, claim, converged, want, status):
    assert TOY.main(_run(claim, converged), ["--quick", "--out", str(tmp_path)]) == status
    out = capsys.readouterr().out
    res = json.loads((tmp_path / "toy.json").read_text())
    assert res["verdict"] == verdict(res) == report.verdict(res) == want
    assert json.loads(out.strip().splitlines()[-1])["verdict"] == want
    # the table is printed aligned, one row per setting, before the verdict line
    assert "setting  measured  predicted" in out and "b        -" in out
    if converged:
        assert "converged: admm" in out
    if want == "FAIL":
        assert res["passed"] is False and res["claim_shown"] is False
        assert "unconverged solves: admm" in res["rejected"] and "rejected: unconverged" in out


def test_provenance_and_table_in_the_saved_report(tmp_path):
    res = _run(True)(False, tmp_path, seed=7, preset="full")
    prov = res["provenance"]
    assert prov["preset"] == "full" and prov["seeds"] == [7] and prov["command"]
    assert prov["rerun"] == "python experiments/toy.py --preset full --seed 7"
    assert set(prov["versions"]) >= {"sparsejax", "jax", "numpy", "python"}
    assert set(prov["machine"]) >= {"platform", "cpu_count", "device_kind"}
    assert prov["git_commit"] is None or len(prov["git_commit"].split("+")[0]) == 40
    assert res["table"]["columns"] == ["setting", "measured", "predicted"]
    assert res["table"]["rows"] == [["a", 1.5, 2.0], ["b", None, None]]
    html = report.write_report([res], tmp_path / "r").read_text()
    assert "Measured vs predicted" in html and "<th>setting</th><th>measured</th><th>predicted</th>" in html
    assert "provenance" in html and "device_kind" in html
    saved = json.loads((tmp_path / "r" / "toy.json").read_text())
    assert saved["verdict"] == "PASS" and saved["provenance"]["seeds"] == [7]


def test_helpers_on_edge_values():
    assert converged_check(None) is None and converged_check({"a": 1.0}) is None
    assert "b 50.00%" in converged_check({"a": 1.0, "b": 0.5})
    lo, hi = wilson_interval(0, 12)
    assert lo == 0.0 and 0.2 < hi < 0.3                 # 0 of 12 still leaves up to ~24%
    lo, hi = wilson_interval(12, 12)
    assert hi == 1.0 and 0.7 < lo < 0.8
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(0, 0)
    text = format_table({"columns": ["k", "rate"], "rows": [[1, 0.123456], [10, None]]})
    assert text.splitlines() == ["k   rate", "--  ------", "1   0.1235", "10  -"]


def test_lista_needs_an_order_of_magnitude():
    mod = load_experiment("lista_speedup")
    seen = [{"T": T, "fista_iters": k} for T, k in ((1, 3), (2, 5), (4, 8), (8, 14), (16, 24))]   # 1.5-3x
    assert not mod.speedup_shown(seen, 1000)
    tenfold = [{"T": T, "fista_iters": 10 * T + 1} for T in (1, 2, 4, 8, 16)]
    assert mod.speedup_shown(tenfold, 1000)
    assert mod.speedup_shown([{"T": 16, "fista_iters": None}], 1000)     # never reached in 1,000 iterations
    assert not mod.speedup_shown([{"T": 16, "fista_iters": None}], 100)  # but 100 would not show 10 x 16


def test_mnist_lead_beyond_seed_spread_and_test_noise():
    mod = load_experiment("mnist_classification")

    def acc(mean, lo, hi):
        return {"mean": mean, "min": lo, "max": hi}

    # the short preset's numbers (2 seeds, 10,000 test images): ahead by 0.35-0.37 points, beyond both noises
    short = {"cnn": acc(98.55, 98.53, 98.57), "ml_ista": acc(98.90, 98.84, 98.96),
             "ml_fista": acc(98.91, 98.81, 99.01), "lbp": acc(98.92, 98.90, 98.94)}
    claim, need = mod.unfolded_ahead(short, 10_000)
    assert claim is True and 0.3 < need < 0.35
    # quick-like: one seed, 1,000 test images, 0.8 points ahead: inside the test-set noise (2.6 points)
    quick = {"cnn": acc(90.0, 90.0, 90.0), "ml_ista": acc(90.8, 90.8, 90.8)}
    claim, need = mod.unfolded_ahead(quick, 1000)
    assert claim is False and 2.5 < need < 2.7
    # ahead on average but one seed below the CNN's best
    spread = dict(short, lbp=acc(98.92, 98.50, 99.34))
    assert mod.unfolded_ahead(spread, 10_000)[0] is False
    assert mod.unfolded_ahead({"cnn": acc(98.5, 98.5, 98.5)}, 10_000) == (None, None)


def test_holistic_claim_needs_a_clear_reduction_of_the_published_order():
    mod = load_experiment("holistic_vs_projection")
    rng = np.random.default_rng(0)
    S, T, l1s, sigma = len(mod.SETTINGS), 400, [1, 10], 0.1
    lam = [{"holistic": [0.05] * S, "projection": [0.05] * S}]
    grid = np.array([0.25, 0.5, 1.0]) * sigma

    def errors(change):
        base = rng.lognormal(0.0, 0.3, (S, 2, T))
        hol = base.copy()
        hol[:, -1] *= 1 + change            # holistic at l1 = 10 vs projection (= holistic at l1 = 1 here)
        return hol, base

    hol, prj = errors(-0.47)
    rows, improvement, claim, _ = mod._summary(hol, prj, prj * 1.1, prj, lam, l1s, grid, sigma, rng)
    assert claim and abs(improvement["pub 25 dB (= 50 dB)"]["relative_change"] + 0.47) < 0.05
    assert rows[0]["published"] == "-18%" and rows[1]["published"] == "-47%" and "(grid edge)" not in rows[0]
    assert rows[-1]["published"] == "VIOLATED"            # holistic oracle above projection's: T8 fails
    hol, prj = errors(-0.05)                              # a reduction, but a tenth of the published one
    assert not mod._summary(hol, prj, prj, prj, lam, l1s, grid, sigma, rng)[2]
    edge = [{"holistic": [0.025] * S, "projection": [0.05] * S}]
    assert "(grid edge)" in mod._summary(hol, prj, prj, prj, edge, l1s, grid, sigma, rng)[0][0][
        "lambda/sigma hol; proj"]
