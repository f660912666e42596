"""Real multi-process runs (JAX's distributed runtime, gloo collectives on CPU) on 127.0.0.1, started by
``sparsejax launch`` (``run_launch``): coding and dictionary learning over a global batch equal the one-process
result on the same data, checkpoints written by process 0 resume on every process."""
import argparse
import os
import pathlib
import textwrap

import pytest

from sparsejax.cli.launch import add_launch_parser, process_command, run_launch

ROOT = pathlib.Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import jax
    from sparsejax import distributed as dist
    info = dist.initialize()                                   # from the SPARSEJAX_* variables the launcher set
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import sparsejax as sj
    from sparsejax.learn import conv, dense, parallel

    mode, ckdir = sys.argv[1], sys.argv[2]
    full = mode == "full"
    P, p = info.num_processes, info.process_id
    assert P == int(sys.argv[3]) and jax.process_count() == P and len(jax.devices()) == P, jax.devices()
    mesh = dist.global_mesh()
    rng = np.random.default_rng(0)
    B = 24 // P                                                 # rows per process; the global batch has 24
    D = np.asarray(sj.random_gaussian(jax.random.PRNGKey(0), 8, 12), np.float64)
    Yall = rng.standard_normal((24, 8))
    Y = Yall[p * B:(p + 1) * B]                                 # this process's rows

    # local rows <-> global array
    g = dist.to_global(Y)
    assert g.shape == (24, 8) and not g.is_fully_addressable
    np.testing.assert_array_equal(dist.local_rows(g), Y)
    np.testing.assert_array_equal(dist.gather(g), Yall)
    r0 = dist.gather(g, root=0)
    assert (r0 is None) == (p != 0)
    assert float(jax.jit(jnp.sum)(g)) == float(dist.gather(jax.jit(jnp.sum)(g)))   # one replicated answer
    try:
        dist.to_global(Yall[: B + (p == 1)])                    # uneven rows: refused on every process
    except ValueError as e:
        assert "same number of rows" in str(e)
    else:
        raise AssertionError("uneven rows must be refused")

    # bad input on one process: every process raises (none is left waiting in a collective)
    Ybad = Y.copy()
    Ybad[0, 0] = np.nan if p == P - 1 else Ybad[0, 0]
    for call in (lambda: dist.encode_global(D, Ybad, "omp", k=2),
                 lambda: parallel.learn_dictionary_parallel(Ybad, 12, method="mod", sparsity=2)):
        try:
            call()
        except ValueError as e:
            assert ("NaN" in str(e)) if p == P - 1 else (f"[{P - 1}] failed" in str(e)), str(e)
        else:
            raise AssertionError("NaN on one process must stop every process")

    # coding a global batch: every dense method, and CBPDN over images
    methods = {"omp": dict(k=2)}                                # k = the learners' sparsity: one compilation
    if full:
        methods.update(lasso=dict(lam=0.1), fista=dict(lam=0.1, tol=1e-8, max_iter=2000),
                       threshold=dict(lam=0.5), ista=dict(lam=0.2, tol=1e-8, max_iter=3000),
                       admm=dict(lam=0.1, tol=1e-8, max_iter=3000), bp_constrained=dict(eps=0.5, max_iter=3000))
    out = {m: dist.encode_global(D, Y, m, **kw) for m, kw in methods.items()}
    got = {m: dist.gather(s.codes) for m, s in out.items()}
    assert all(dist.gather(s.num_steps).shape == (24,) for s in out.values())
    S = rng.standard_normal((4, 1, 12, 12))
    f = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (3, 1, 3, 3)), np.float64)
    if full:
        cs = dist.cbpdn_global(f, S[p * (4 // P):(p + 1) * (4 // P)], 0.1, max_iter=300, tol=1e-7)
        assert cs.codes.shape == (4, 3, 12, 12)
        conv_codes, conv_steps = dist.gather(cs.codes), dist.gather(cs.num_steps)

    # data-parallel learning; K-SVD / Optax / conv Optax in the full run
    runs = {"mod": dict(sparsity=2)}
    if full:
        runs.update(ksvd=dict(sparsity=2), online=dict(sparsity=2, batch_size=8),
                    optax=dict(lam=0.1, batch_size=8, max_iter=20))
    learned = {m: parallel.learn_dictionary_parallel(Y, 12, method=m, n_steps=3, key=jax.random.PRNGKey(1), **kw)
               for m, kw in runs.items()}
    for m, res in learned.items():
        assert res.loop.status == "completed" and res.codes.shape == (24, 12), (m, res.loop.message)
    learned_codes = {m: dist.gather(res.codes) for m, res in learned.items()}
    images = rng.standard_normal((4, 16, 16))
    mine = images[p * (4 // P):(p + 1) * (4 // P)]
    cdl = {}
    if full:
        cdl["admm"] = parallel.learn_conv_dictionary_parallel(mine, 4, 3, 0.1, n_steps=3, x_iter=2, d_iter=2)
        cdl["optax"] = parallel.learn_conv_dictionary_parallel(mine, 4, 3, 0.1, method="optax", n_steps=3, x_iter=2)
    cdl_codes = {m: dist.gather(r.codes) for m, r in cdl.items()}

    # checkpoints: process 0 writes, every process resumes the same step and ends where an unbroken run ends
    kw = dict(method="mod", sparsity=2, key=jax.random.PRNGKey(1), checkpoint_dir=ckdir, checkpoint_every=1)
    part = parallel.learn_dictionary_parallel(Y, 12, n_steps=4, stop_after=2, **kw)
    assert part.loop.status == "stopped"
    rest = parallel.learn_dictionary_parallel(Y, 12, n_steps=4, **kw)
    assert rest.loop.resumed_from == 2 and rest.loop.history["loss"].shape == (4,), rest.loop
    whole = parallel.learn_dictionary_parallel(Y, 12, n_steps=4, method="mod", sparsity=2, key=jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(rest.dictionary), np.asarray(whole.dictionary), atol=1e-12)
    np.testing.assert_allclose(rest.loop.history["loss"], whole.loop.history["loss"], rtol=1e-12)
    try:                                                        # other settings into the same folder: refused
        parallel.learn_dictionary_parallel(Y, 12, n_steps=5, method="mod", sparsity=3, key=jax.random.PRNGKey(1),
                                           checkpoint_dir=ckdir)
    except ValueError as e:
        assert "other settings" in str(e) and "sparsity" in str(e)
    else:
        raise AssertionError("a resume with other settings must be refused")
    dist.barrier("checks-done")

    if p == 0:                                                  # the one-process results on all the data
        for m, kw in methods.items():
            ref = np.asarray(sj.encode(D, Yall, m, **kw).codes)
            np.testing.assert_allclose(got[m], ref, atol=1e-7, err_msg=m)
        for k in range(4 if full else 0):
            ref = sj.pursuit.csc.cbpdn_admm(f, S[k], 0.1, max_iter=300, tol=1e-7)
            np.testing.assert_allclose(conv_codes[k], np.asarray(ref.codes), atol=1e-9)
            assert conv_steps[k] == int(ref.num_steps)
        for m, kw in runs.items():
            one = dense.learn_dictionary(Yall, 12, method=m, n_steps=3, key=jax.random.PRNGKey(1), progress=False,
                                         **kw)
            np.testing.assert_allclose(np.asarray(learned[m].dictionary), np.asarray(one.dictionary), atol=1e-9,
                                       err_msg=m)
            np.testing.assert_allclose(learned[m].loop.history["loss"], one.loop.history["loss"], rtol=1e-9)
            np.testing.assert_allclose(learned_codes[m], np.asarray(one.codes), atol=1e-8, err_msg=m)
        for m, res in cdl.items():
            one = conv.learn_conv_dictionary(images, 4, 3, 0.1, method=m, n_steps=3, x_iter=2,
                                             d_iter=2 if m == "admm" else 1, progress=False)
            np.testing.assert_allclose(np.asarray(res.filters), np.asarray(one.filters), atol=1e-9, err_msg=m)
            np.testing.assert_allclose(cdl_codes[m], np.asarray(one.codes), atol=1e-9, err_msg=m)
            np.testing.assert_allclose(res.loop.history["loss"], one.loop.history["loss"], rtol=1e-9)
        print("MULTIPROCESS OK", P)
    """
)


def _launch(tmp_path, monkeypatch, n, mode, timeout=400):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    ap = argparse.ArgumentParser()
    add_launch_parser(ap.add_subparsers())
    logs = tmp_path / "logs"
    args = ap.parse_args(["launch", "-n", str(n), "--timeout", str(timeout), "--log-dir", str(logs), "--",
                          str(script), mode, str(tmp_path / "ckpt"), str(n)])
    status = run_launch(args)
    text = {i: (logs / f"process_{i}.log").read_text() for i in range(n)}
    assert status == 0, "\n".join(f"--- process {i} ---\n{t[-3000:]}" for i, t in text.items())
    return text


def test_two_processes_equal_one_process(tmp_path, monkeypatch):
    """Global arrays, OMP coding, MOD learning and a resumed checkpoint on 2 processes (~20 s CPU in all)."""
    text = _launch(tmp_path, monkeypatch, 2, "quick")
    assert "MULTIPROCESS OK 2" in text[0]


@pytest.mark.slow  # every dense method, CBPDN, K-SVD / online / Optax, conv ADMM / Optax on 4 processes: minutes
def test_four_processes_every_method_equal_one_process(tmp_path, monkeypatch):
    text = _launch(tmp_path, monkeypatch, 4, "full", timeout=1800)
    assert "MULTIPROCESS OK 4" in text[0]


def test_launch_reports_a_failing_process_and_stops_the_rest(tmp_path, monkeypatch):
    """Process 1 fails before joining; process 0 (which would wait for it) is stopped after the grace period."""
    script = tmp_path / "fail.py"
    script.write_text("import os, sys, time\n"
                      "if os.environ['SPARSEJAX_PROCESS_ID'] == '1':\n    sys.exit(7)\n"
                      "time.sleep(60)\n")
    ap = argparse.ArgumentParser()
    add_launch_parser(ap.add_subparsers())
    args = ap.parse_args(["launch", "-n", "2", "--grace", "0.5", "--", str(script)])
    assert run_launch(args) == 7
    args = ap.parse_args(["launch", "-n", "1", "--timeout", "0.5", "--", str(script)])
    assert run_launch(args) == 124
    args = ap.parse_args(["launch", "-n", "2", "--"])
    assert run_launch(args) == 2
    assert process_command(["python", "-m", "x"])[1:] == ["-m", "x"]
