"""Streaming coding (sparsejax.streaming, sparsejax.cli.encode): chunked codes equal one-shot ``encode``, the sources
read what NumPy reads, a run killed mid-way resumes to the uninterrupted output, bad input is refused in words."""
import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.lib.stride_tricks import sliding_window_view

import sparsejax as sj
from sparsejax.cli.encode import add_encode_parser, main as encode_main, run_encode
from sparsejax.datasets.images import load_image, save_image
from sparsejax.streaming import (
    ArraySignals,
    ImagePatches,
    NpySignals,
    encode_chunks,
    encode_to_file,
    iter_codes,
    read_codes,
)

ROOT = Path(__file__).resolve().parents[1]
N, M, K, CHUNK = 16, 32, 3, 64          # one compiled shape shared by the tests of this module


def _problem(signals=200, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((N, M))
    D /= np.linalg.norm(D, axis=0)
    Y = rng.standard_normal((signals, N))
    return D.astype(dtype), Y.astype(dtype)


def _dense(chunks, m=M):
    return np.vstack([c.dense(m) for c in chunks])


def _ref_omp(D, Y, k=K):
    return np.asarray(sj.encode(D, Y, "omp", k=k).codes)


def test_chunks_equal_one_shot_encode_omp(tmp_path):
    D, Y = _problem(200)                  # 200 = 3 x 64 + 8: the last chunk is padded to 64 rows and trimmed
    ref = _ref_omp(D, Y)
    parts = list(encode_chunks(D, ArraySignals(Y, CHUNK), "omp", k=K))
    assert [p.rows for p in parts] == [64, 64, 64, 8]
    assert [p.start for p in parts] == [0, 64, 128, 192]
    np.testing.assert_array_equal(_dense(parts), ref)
    assert all(p.converged.all() and p.finite.all() for p in parts)
    # any iterable of arrays (a list here), and the .npz file / parts folder written by encode_to_file
    np.testing.assert_array_equal(_dense(encode_chunks(D, [Y[:64], Y[64:150], Y[150:]], "omp", k=K)), ref)
    s = encode_to_file(D, ArraySignals(Y, CHUNK), tmp_path / "codes.npz", "omp", k=K, progress=False)
    X = sp.load_npz(tmp_path / "codes.npz")
    assert isinstance(X, sp.csr_matrix) and X.shape == (200, M) and X.nnz == s.nnz == 200 * K
    np.testing.assert_array_equal(X.toarray(), ref)
    assert np.load(tmp_path / "codes.npz")["converged"].all()
    assert not (tmp_path / "codes.npz.parts").exists()
    assert (s.signals, s.chunks, s.computed, s.skipped, s.not_converged, s.nonfinite) == (200, 4, 4, 0, 0, 0)
    encode_to_file(D, ArraySignals(Y, CHUNK), tmp_path / "parts", "omp", k=K, progress=False)
    np.testing.assert_array_equal(read_codes(tmp_path / "parts").toarray(), ref)
    np.testing.assert_array_equal(_dense(iter_codes(tmp_path / "parts")), ref)


@pytest.mark.slow
def test_chunks_lasso_match_one_shot_and_optimality(tmp_path):
    D, Y = _problem(100, seed=1)
    lam = 0.3
    ref = np.asarray(sj.encode(D, Y, "lasso", lam=lam).codes)
    got = read_codes(encode_to_file(D, ArraySignals(Y, CHUNK), tmp_path / "c.npz", "lasso", lam=lam,
                                    progress=False).path).toarray()
    np.testing.assert_allclose(got, ref, atol=1e-4)
    # Lasso optimality of the streamed codes: |D^T (y - D a)| <= lam, = lam sign(a) on the support
    corr = (Y - got @ D.T) @ D
    assert np.all(np.abs(corr) <= lam * (1 + 1e-3) + 1e-4)
    on = got != 0
    np.testing.assert_allclose(corr[on], lam * np.sign(got[on]), atol=2e-3)


def test_sources_read_what_numpy_reads(tmp_path):
    Y = np.arange(7 * 5, dtype=np.float64).reshape(7, 5)
    np.save(tmp_path / "y.npy", Y)
    src = NpySignals(tmp_path / "y.npy", chunk_size=3)
    assert (src.num_chunks, src.num_signals, src.n, src.dtype) == (3, 7, 5, np.float64)
    np.testing.assert_array_equal(np.vstack(list(src)), Y)
    np.testing.assert_array_equal(src.read(2), Y[6:])
    big = np.lib.format.open_memmap(tmp_path / "m.npy", mode="w+", dtype=np.float32, shape=(10, 4))
    big[:] = np.random.default_rng(0).standard_normal((10, 4))
    big.flush()
    np.testing.assert_array_equal(np.vstack(list(NpySignals(tmp_path / "m.npy", 4))), np.asarray(big))
    # patches of a folder of images: every stride-th patch, row-major, images in name order
    rng = np.random.default_rng(1)
    imgs = [rng.random((9, 11)), rng.random((8, 8))]
    for i, im in enumerate(imgs):
        save_image(tmp_path / f"im{i}.png", im)
    src = ImagePatches(tmp_path, 4, stride=2, chunk_size=10, center=True)
    ref = np.vstack([sliding_window_view(load_image(tmp_path / f"im{i}.png"), (4, 4))[::2, ::2].reshape(-1, 16)
                     for i in range(2)])
    ref = ref - ref.mean(axis=1, keepdims=True)
    got = list(src)
    assert src.num_signals == ref.shape[0] == 3 * 4 + 3 * 3
    assert [c.shape[0] for c in got] == [10, 10, 1]
    np.testing.assert_allclose(np.vstack(got), ref, atol=1e-6)


_KILLED_RUN = """
import sys, time
import numpy as np
from sparsejax.streaming import ArraySignals, encode_to_file
D, Y, out = np.load(sys.argv[1]), np.load(sys.argv[2]), sys.argv[3]
src = ArraySignals(Y, {chunk})
def slow():
    for i in range(src.num_chunks):
        if i >= 2:
            time.sleep(0.5)          # a slow disk: the parent kills the run here
        yield src.read(i)
encode_to_file(D, slow(), out, "omp", k={k}, fingerprint="Y", progress=False)
print("FINISHED")
"""


def test_killed_run_resumes_to_the_uninterrupted_output(tmp_path):
    D, Y = _problem(64 * 12, seed=2)
    np.save(tmp_path / "D.npy", D)
    np.save(tmp_path / "Y.npy", Y)
    out = tmp_path / "codes.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN.format(chunk=CHUNK, k=K), str(tmp_path / "D.npy"),
                             str(tmp_path / "Y.npy"), str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    done_log = tmp_path / "codes.npz.parts" / "done.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if done_log.exists() and len(done_log.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]!r}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    finished = len(done_log.read_text().splitlines())
    assert 2 <= finished < 12
    s = encode_to_file(D, ArraySignals(Y, CHUNK), out, "omp", k=K, fingerprint="Y", progress=False)
    assert s.skipped == finished and s.computed == 12 - finished and s.chunks == 12
    np.testing.assert_array_equal(read_codes(out).toarray(), _ref_omp(D, Y))


def test_resume_refuses_other_settings_and_restart_starts_afresh(tmp_path):
    D, Y = _problem(128)
    out = tmp_path / "parts"
    encode_to_file(D, ArraySignals(Y, CHUNK), out, "omp", k=K, progress=False)
    with pytest.raises(ValueError, match=r"other settings.*options"):
        encode_to_file(D, ArraySignals(Y, CHUNK), out, "omp", k=K - 1, progress=False)
    with pytest.raises(ValueError, match=r"other settings.*dictionary"):
        encode_to_file(-D, ArraySignals(Y, CHUNK), out, "omp", k=K, progress=False)
    with pytest.raises(ValueError, match=r"other settings.*chunk_size"):
        encode_to_file(D, ArraySignals(Y, 32), out, "omp", k=K, progress=False)
    again = encode_to_file(D, ArraySignals(Y, CHUNK), out, "omp", k=K, progress=False)
    assert (again.skipped, again.computed) == (2, 0)
    fresh = encode_to_file(D, ArraySignals(Y, CHUNK), out, "omp", k=K - 1, resume=False, progress=False)
    assert (fresh.skipped, fresh.computed) == (0, 2)
    np.testing.assert_array_equal(read_codes(out).toarray(), _ref_omp(D, Y, K - 1))


def test_failure_in_the_stream_keeps_finished_chunks(tmp_path):
    D, Y = _problem(192)

    def broken():
        yield Y[:64]
        yield Y[64:128]
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        encode_to_file(D, broken(), tmp_path / "p", "omp", k=K, fingerprint="Y", progress=False)
    assert len((tmp_path / "p" / "done.jsonl").read_text().splitlines()) == 2
    s = encode_to_file(D, ArraySignals(Y, CHUNK), tmp_path / "p", "omp", k=K, fingerprint="Y", progress=False)
    assert (s.skipped, s.computed) == (2, 1)
    np.testing.assert_array_equal(read_codes(tmp_path / "p").toarray(), _ref_omp(D, Y))


def test_not_converged_signals_are_counted_not_hidden(tmp_path):
    D, Y = _problem(64)
    s = encode_to_file(D, ArraySignals(Y, CHUNK), tmp_path / "c.npz", "omp", k=1, tol=1e-6, progress=False)
    conv = np.load(tmp_path / "c.npz")["converged"]
    assert s.not_converged == int((~conv).sum()) == 64          # one atom cannot fit a random signal to 1e-6


def test_bad_input_is_named_before_computing(tmp_path):
    D, Y = _problem(64)
    with pytest.raises(ValueError, match="D has non-finite"):
        list(encode_chunks(np.where(np.eye(N, M) > 0, np.nan, D), [Y], "omp", k=K))
    with pytest.raises(ValueError, match=r"D must be an \(n, m\) array"):
        encode_chunks(D[:, 0], [Y], "omp", k=K)
    with pytest.raises(ValueError, match="method"):
        encode_chunks(D, [Y], "omg", k=K)
    with pytest.raises(ValueError, match="prefetch"):
        encode_chunks(D, [Y], "omp", prefetch=0, k=K)
    with pytest.raises(ValueError, match=r"chunk 1 must have shape \(rows, 16\)"):
        list(encode_chunks(D, [Y, Y[:, :5]], "omp", k=K))
    bad = Y.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="chunk 1 has non-finite values .* signal 69"):
        list(encode_chunks(D, [Y, bad], "omp", k=K))
    with pytest.raises(ValueError, match="lam"):
        list(encode_chunks(D, [Y], "lasso"))
    np.save(tmp_path / "three.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="2-D array"):
        NpySignals(tmp_path / "three.npy", 4)
    np.save(tmp_path / "y.npy", Y)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "y.npy").read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        NpySignals(tmp_path / "cut.npy", 4)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        NpySignals(tmp_path / "none.npy", 4)
    with pytest.raises(ValueError, match="chunk_size"):
        ArraySignals(Y, 0)
    with pytest.raises(FileNotFoundError, match="no PNG image"):
        ImagePatches(tmp_path, 4)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        encode_to_file(D, [Y], tmp_path / "file", "omp", k=K, progress=False)


def _cli(argv):
    sub = argparse.ArgumentParser(prog="sparsejax").add_subparsers(dest="command")
    return run_encode(add_encode_parser(sub).parse_args(argv))


def test_cli_encodes_npy_and_images(tmp_path, capsys):
    D, Y = _problem(150)
    np.save(tmp_path / "D.npy", D)
    np.save(tmp_path / "Y.npy", Y)
    assert _cli([str(tmp_path / "Y.npy"), "--dict", str(tmp_path / "D.npy"), "--out", str(tmp_path / "c.npz"),
                 "--k", str(K), "--chunk-size", str(CHUNK), "--quiet"]) == 0
    np.testing.assert_array_equal(sp.load_npz(tmp_path / "c.npz").toarray(), _ref_omp(D, Y))
    assert "150 signals" in capsys.readouterr().err
    # rerun: nothing to redo is not an error; the parts were removed, so it codes again to the same file
    assert encode_main([str(tmp_path / "Y.npy"), "--dict", str(tmp_path / "D.npy"), "--out",
                        str(tmp_path / "c.npz"), "--k", str(K), "--chunk-size", str(CHUNK), "--quiet"]) == 0
    # a folder of images cut into 4 x 4 patches, dictionary from an .npz as `sparsejax learn` writes
    rng = np.random.default_rng(3)
    (tmp_path / "imgs").mkdir()
    save_image(tmp_path / "imgs" / "a.png", rng.random((12, 10)))
    np.savez(tmp_path / "learned.npz", dictionary=D, loss=np.zeros(3))
    assert _cli([str(tmp_path / "imgs"), "--dict", str(tmp_path / "learned.npz"), "--out",
                 str(tmp_path / "pc"), "--k", str(K), "--chunk-size", str(CHUNK), "--quiet"]) == 0
    P = sliding_window_view(load_image(tmp_path / "imgs" / "a.png"), (4, 4)).reshape(-1, 16).astype(np.float32)
    np.testing.assert_array_equal(read_codes(tmp_path / "pc").toarray(), _ref_omp(D, P))


def test_cli_exit_codes(tmp_path, capsys):
    D, Y = _problem(64)
    np.save(tmp_path / "D.npy", D)
    np.save(tmp_path / "Y.npy", Y)
    base = [str(tmp_path / "Y.npy"), "--dict", str(tmp_path / "D.npy"), "--quiet"]
    cases = [
        (["--out", str(tmp_path / "c.txt"), "--k", "2"], "--out must end in .npz"),
        (["--out", str(tmp_path / "c.npz")], "needs --k"),
        (["--out", str(tmp_path / "c.npz"), "--method", "lasso"], "needs --lam"),
        (["--out", str(tmp_path / "c.npz"), "--method", "lasso", "--lam", "-1"], "--lam must be"),
        (["--out", str(tmp_path / "c.npz"), "--k", "2", "--eps", "0.1"], "--eps does not apply"),
        (["--out", str(tmp_path / "c.npz"), "--k", "2", "--chunk-size", "0"], "--chunk-size must be >= 1"),
    ]
    for extra, words in cases:
        assert _cli(base + extra) == 2
        assert words in capsys.readouterr().err
    np.save(tmp_path / "D8.npy", D[:8])
    assert _cli([str(tmp_path / "Y.npy"), "--dict", str(tmp_path / "D8.npy"), "--out", str(tmp_path / "c.npz"),
                 "--k", "2"]) == 2
    assert "length 16" in capsys.readouterr().err
    assert not (tmp_path / "c.npz").exists() and not (tmp_path / "c.npz.parts").exists()
    # written, but the pursuit did not reach the tolerance: exit 3, counted
    assert _cli(base + ["--out", str(tmp_path / "c.npz"), "--k", "1", "--tol", "1e-6",
                        "--chunk-size", str(CHUNK)]) == 3
    assert "64 signal(s) did not converge" in capsys.readouterr().err
    assert (tmp_path / "c.npz").exists()


# ------------------------------------------------------------------ benchmarks/device.sh (the one GPU run)
DEVICE_SH = ROOT / "benchmarks" / "device.sh"


def _bench_names():
    return sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_"))


def test_device_script_parses_and_dry_run_lists_every_step(tmp_path):
    assert subprocess.run(["bash", "-n", str(DEVICE_SH)], capture_output=True).returncode == 0
    res = subprocess.run(["bash", str(DEVICE_SH), "--cpu", "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, OUT=str(tmp_path)), timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    steps = [json.loads(line) for line in (tmp_path / "summary.jsonl").read_text().splitlines()]
    names = [s["step"] for s in steps]
    assert names == ["install sparsejax", "pytest"] + [f"bench {b}" for b in _bench_names()]
    assert all(s["status"] == "dry-run" and 0 < s["limit_s"] <= 570 for s in steps)
    bad = subprocess.run(["bash", str(DEVICE_SH), "--gpu-please"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, OUT=str(tmp_path)))
    assert bad.returncode == 2 and "unknown option" in bad.stderr


@pytest.mark.slow
def test_device_script_runs_every_step_on_cpu(tmp_path):
    res = subprocess.run(["bash", str(DEVICE_SH), "--cpu", "--tiny"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, OUT=str(tmp_path), DEADLINE="1500"), timeout=1800)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["backend"] == "cpu"
    steps = {s["step"]: s for s in map(json.loads, (tmp_path / "summary.jsonl").read_text().splitlines())}
    assert set(steps) == {"install sparsejax", "pytest"} | {f"bench {b}" for b in _bench_names()}
    assert steps["install sparsejax"]["status"] == "ok" and steps["pytest"]["status"] == "ok"
    assert json.loads((tmp_path / "tests.json").read_text())["counts"]["passed"] >= 2
    assert steps["bench streaming_memory"]["status"] == "ok"
    rows = [json.loads(line) for line in (tmp_path / "bench_streaming_memory.jsonl").read_text().splitlines()]
    assert [r["signals"] for r in rows] == [2000, 4000] and all(r["peak_rss_mb"] > 0 for r in rows)
    assert (res.returncode == 0) == all(s["status"] == "ok" for s in steps.values())
