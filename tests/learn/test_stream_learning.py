"""Online dictionary learning from a stream of chunks (sparsejax.learn.stream): the same dictionary as the online
learner run over the same mini-batches, a planted dictionary recovered from a .npy stream, exact resume, settings
checked, bad input named."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.learn import dense
from sparsejax.learn.dense import atom_recovery
from sparsejax.learn.loop import ConfigMismatchError
from sparsejax.learn.stream import learn_stream
from sparsejax.streaming import ArraySignals, NpySignals

N_SIG, M, S, B, CHUNK = 8, 10, 2, 50, 200


def _planted(signals, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((N_SIG, M))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((signals, M))
    for i in range(signals):
        A[i, rng.choice(M, S, replace=False)] = rng.choice([-1.0, 1.0], S) * (1 + rng.random(S))
    return D.astype(np.float32), (A @ D.T).astype(np.float32)


def test_stream_equals_online_learner_and_recovers_planted_atoms(tmp_path):
    D_true, Y = _planted(2000)
    np.save(tmp_path / "y.npy", Y)
    res = learn_stream(NpySignals(tmp_path / "y.npy", CHUNK), M, sparsity=S, batch_size=B, n_epochs=2,
                       progress=False)
    assert res.status == "completed" and (res.chunks, res.batches) == (20, 80)
    # the reference: dense.online_step over the same mini-batches, from the same initial dictionary
    k_state, k_init = jax.random.split(jax.random.PRNGKey(0))
    st = dense.init_state("online", dense.init_dictionary(jnp.asarray(Y[:CHUNK]), M, k_init), k_state)
    for epoch in range(2):
        for lo in range(0, 2000, B):
            st, _ = dense.online_step(st, Y[lo:lo + B], sparsity=S, forget=np.float32(10.0))
    np.testing.assert_array_equal(np.asarray(res.state.D), np.asarray(st.D))
    np.testing.assert_array_equal(np.asarray(res.state.stats.A), np.asarray(st.stats.A))
    assert atom_recovery(res.dictionary, D_true) >= 0.9
    assert res.history["loss"].shape == (80,) and res.history["loss"][-1] < res.history["loss"][0]


def test_stopped_run_resumes_to_the_same_dictionary(tmp_path):
    _, Y = _planted(1000, seed=1)
    src = ArraySignals(Y, CHUNK)
    full = learn_stream(src, M, sparsity=S, batch_size=B, n_epochs=2, progress=False)
    part = learn_stream(src, M, sparsity=S, batch_size=B, n_epochs=2, checkpoint_dir=tmp_path, checkpoint_every=2,
                        stop_after=7, progress=False)
    assert part.status == "stopped" and part.chunks == 7
    rest = learn_stream(src, M, sparsity=S, batch_size=B, n_epochs=2, checkpoint_dir=tmp_path, progress=False)
    assert rest.resumed_from == 7 and rest.chunks == 10 and rest.batches == full.batches == 40
    np.testing.assert_array_equal(np.asarray(rest.state.D), np.asarray(full.state.D))
    np.testing.assert_array_equal(np.asarray(rest.state.stats.B), np.asarray(full.state.stats.B))
    with pytest.raises(ConfigMismatchError, match="batch_size"):
        learn_stream(src, M, sparsity=S, batch_size=25, checkpoint_dir=tmp_path, progress=False)
    # a one-pass generator resumes too: the learned chunks are read and skipped
    gen_part = learn_stream((Y[i:i + CHUNK] for i in range(0, 1000, CHUNK)), M, sparsity=S, batch_size=B,
                            checkpoint_dir=tmp_path / "g", stop_after=2, fingerprint="Y", progress=False)
    gen_rest = learn_stream((Y[i:i + CHUNK] for i in range(0, 1000, CHUNK)), M, sparsity=S, batch_size=B,
                            checkpoint_dir=tmp_path / "g", fingerprint="Y", progress=False)
    one = learn_stream(src, M, sparsity=S, batch_size=B, progress=False)
    assert gen_part.chunks == 2 and gen_rest.resumed_from == 2 and gen_rest.chunks == 5
    np.testing.assert_array_equal(np.asarray(gen_rest.state.D), np.asarray(one.state.D))


def test_bad_input_is_named():
    _, Y = _planted(CHUNK)
    with pytest.raises(ValueError, match="sparsity .* or lam"):
        learn_stream([Y], M)
    with pytest.raises(ValueError, match="batch_size"):
        learn_stream([Y], M, sparsity=S, batch_size=0)
    with pytest.raises(ValueError, match="sparsity"):
        learn_stream([Y], M, sparsity=M + 1)
    with pytest.raises(ValueError, match="re-iterable"):
        learn_stream(iter([Y]), M, sparsity=S, n_epochs=2)
    with pytest.raises(ValueError, match="only 5 signals"):
        learn_stream([Y[:5]], M, sparsity=S)
    with pytest.raises(ValueError, match="empty"):
        learn_stream([], M, sparsity=S)
    with pytest.raises(ValueError, match=r"chunk 1 must have shape \(rows, 8\)"):
        learn_stream([Y, Y[:, :4]], M, sparsity=S, batch_size=B, progress=False)
    bad = Y.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="chunk 1 has non-finite values .* row 3"):
        learn_stream([Y, bad], M, sparsity=S, batch_size=B, progress=False)
