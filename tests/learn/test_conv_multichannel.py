"""Multi-channel (colour) convolutional dictionaries and filters of several sizes in one dictionary
(sparsejax.learn.conv, issue 14 part 3), against SPORCO's ConvCnstrMOD (mixed dsz, multi-channel) and
ConvBPDNDictLearn (multi-channel dictionary)."""
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.learn import conv as LC

SIZES = [(3, 3), (3, 3), (5, 5), (5, 5)]


def planted(C, seed=0, K=2, N=16, density=0.15):
    """Unit filters (M, C, 5, 5) with the supports of SIZES, sparse Gaussian maps, exact signals (K, C, N, N)."""
    rng = np.random.default_rng(seed)
    mask = LC.support_mask(SIZES)
    M, h = mask.shape[0], mask.shape[1]
    D = rng.standard_normal((M, C, h, h)) * mask[:, None]
    D /= np.linalg.norm(D.reshape(M, -1), axis=1)[:, None, None, None]
    Z = rng.standard_normal((K, M, N, N)) * (rng.random((K, M, N, N)) < density)
    S = np.fft.irfft2(np.einsum("kmxy,mcxy->kcxy", np.fft.rfft2(Z), np.fft.rfft2(D, s=(N, N))), s=(N, N))
    return D, Z, S, mask


def test_support_mask_and_masked_projection():
    mask = LC.support_mask([2, 3])
    assert mask.tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    f = jnp.array([[[1.0, 3.0, 7.0], [2.0, 2.0, 2.0]], [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])    # (M=2, C=2, 3)
    g = np.asarray(LC.project_filters(f, zero_mean=True, mask=mask))
    assert np.all(g[0, :, 2] == 0.0)                                       # outside filter 0's support
    np.testing.assert_allclose(g[0].sum(axis=-1), 0.0, atol=1e-6)          # zero mean per channel, on the support
    np.testing.assert_allclose(g[1].sum(axis=-1), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(g.reshape(2, -1), axis=1), 1.0, rtol=1e-6)   # norm over channels
    np.testing.assert_allclose(g[0, 0, :2], [-0.5 ** 0.5, 0.5 ** 0.5], rtol=1e-6)   # (1, 3) - 2 and (2, 2) - 2


@pytest.mark.parametrize("C", [pytest.param(1, marks=pytest.mark.slow), 3])
def test_dict_update_recovers_planted_mixed_size_filters_as_sporco(C, x64):
    """ConvCnstrMOD with a mixed-size (and for C = 3 multi-channel) dictionary and the planted codes: ours and
    SPORCO's ConvCnstrMOD (dsz ((3, 3, C, 2), (5, 5, C, 2))) both return the planted filters, ours zero outside
    each support (measured: max error 6e-6 ours, 2e-4 SPORCO's after 200 iterations)."""
    ccmod = pytest.importorskip("sporco.admm.ccmod")
    D, Z, S, mask = planted(C)
    M, h = D.shape[0], D.shape[2]
    s = S if C > 1 else S[:, 0]
    init = np.random.default_rng(1).standard_normal(D.shape)
    st = LC.dict_update(init, Z, s, rho=1.0, n_iter=200, filter_sizes=SIZES)
    ours = np.asarray(st.g)
    assert np.all(ours * (1 - mask[:, None]) == 0.0)
    np.testing.assert_allclose(ours, D, atol=1e-4)
    opt = ccmod.ConvCnstrMODOptions({"Verbose": False, "MaxMainIter": 200, "rho": 1.0, "ZeroMean": False},
                                    method="cns")
    Zsp = np.transpose(Z, (2, 3, 0, 1))[:, :, None]                         # (H, W, 1, K, M)
    Ssp = np.transpose(S, (2, 3, 1, 0))                                      # (H, W, C, K)
    dsz = ((3, 3, C, 2), (5, 5, C, 2)) if C > 1 else ((3, 3, 2), (5, 5, 2))
    c = ccmod.ConvCnstrMOD(Zsp, Ssp if C > 1 else Ssp[:, :, 0], dsz, opt, dimK=1, method="cns")
    c.solve()
    theirs = np.transpose(np.asarray(c.getdict()).reshape(h, h, C, M), (3, 2, 0, 1))
    np.testing.assert_allclose(theirs, D, atol=2e-3)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


@pytest.mark.slow
def test_multichannel_learning_objective_matches_sporco(x64):
    """Interleaved ADMM with a 3-channel dictionary vs SPORCO's ConvBPDNDictLearn (dmethod "cns", AccurateDFid: the
    objective at the projected filters and the sparse codes, as ours), same init and penalties, 20 iterations:
    the final objectives agree within 1 % (measured 108.14 vs 108.40) and the trajectory within 6 % (the
    dictionary step's first iterates differ slightly, as for C = 1)."""
    cbpdndl = pytest.importorskip("sporco.dictlrn.cbpdndl")
    rng = np.random.default_rng(0)
    K, C, N, M, h, lam, n = 2, 3, 16, 4, 4, 0.1, 20
    S = rng.standard_normal((K, C, N, N))
    D0 = rng.standard_normal((M, C, h, h))
    opt = cbpdndl.ConvBPDNDictLearn.Options({"Verbose": False, "MaxMainIter": n, "AccurateDFid": True,
                                             "CBPDN": {"rho": 50.0 * lam + 0.5},
                                             "CCMOD": {"rho": 10.0, "ZeroMean": False}}, dmethod="cns")
    d = cbpdndl.ConvBPDNDictLearn(np.transpose(D0, (2, 3, 1, 0)), np.transpose(S, (2, 3, 1, 0)), lam, opt,
                                  dmethod="cns", dimK=1)
    d.solve()
    theirs = np.asarray(d.getitstat().ObjFun)
    res = LC.learn_conv_dictionary(S, M, h, lam, n_steps=n, init=D0, x_rho=50 * lam + 0.5, d_rho=10.0,
                                   multichannel=True, progress=False)
    ours = res.loop.history["loss"]
    assert res.filters.shape == (M, C, h, h) and res.codes.shape == (K, M, N, N)
    assert abs(ours[-1] - theirs[-1]) <= 0.01 * theirs[-1], (ours[-1], theirs[-1])
    np.testing.assert_allclose(ours, theirs, rtol=0.06)
    F = float(LC.cdl_objective(res.filters, jnp.asarray(S), res.codes, lam))
    np.testing.assert_allclose(F, ours[-1], rtol=1e-6)


@pytest.mark.slow  # ~7 s CPU; the default run covers multi-channel learning through tests/cli/test_learn_color.py
def test_multichannel_mixed_sizes_learning_falls_and_keeps_constraints():
    """A 3-channel dictionary of 3 x 3 and 5 x 5 zero-mean filters: the objective falls, filters stay unit-norm over
    their channels, zero-mean per channel and zero outside their supports; the codes are shared by the channels."""
    D, Z, S, mask = planted(3, seed=2)
    S = S.astype(np.float32)
    res = LC.learn_conv_dictionary(S, 4, SIZES, 0.05, n_steps=15, x_iter=2, d_iter=2, zero_mean=True,
                                   multichannel=True, progress=False)
    f = np.asarray(res.filters)
    loss = res.loop.history["loss"]
    assert res.loop.status == "completed" and f.shape == (4, 3, 5, 5) and res.codes.shape == (2, 4, 16, 16)
    assert loss[-1] < 0.5 * loss[0]
    assert np.all(f * (1 - mask[:, None]) == 0.0)
    np.testing.assert_allclose(np.linalg.norm(f.reshape(4, -1), axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(f.sum(axis=(2, 3)), 0.0, atol=1e-5)
    F = float(LC.cdl_objective(res.filters, jnp.asarray(S), res.codes, 0.05))
    np.testing.assert_allclose(F, loss[-1], rtol=1e-4)


def test_colour_filters_image():
    f = np.zeros((2, 3, 2, 2))
    f[0, 0, 0, 0], f[0, 2, 1, 1], f[1, 1] = 2.0, -1.0, 1.0
    img = LC.filters_to_image(f, ncols=2)
    assert img.shape == (4, 7, 3)
    np.testing.assert_allclose(img[1, 1], [1.0, 0.5, 0.5])      # red +2 = the filter's max -> 1
    np.testing.assert_allclose(img[2, 2], [0.5, 0.5, 0.25])     # blue -1 = half the max -> 0.25
    np.testing.assert_allclose(img[1:3, 4:6, 1], 1.0)           # filter 1: green 1 everywhere
    assert np.all(img[0] == 1.0)                                # white border


@pytest.mark.parametrize("kw, exc, match", [
    (dict(images=np.zeros((2, 3, 8, 8), np.float32), multichannel=False), ValueError, "multichannel=True"),
    (dict(images=np.zeros((2, 8), np.float32)), ValueError, r"\(K, C, H, W\)"),
    (dict(filter_size=(3,)), ValueError, r"\(K, C, H, W\)"),
    (dict(filter_size=[3, 5]), ValueError, "one size per filter: 4 sizes expected"),
    (dict(filter_size=[(3, 3), (5,), (3, 3), (3, 3)]), ValueError, "filter_size must be"),
    (dict(filter_size=[3, 3, 3, 9]), ValueError, "larger than the images"),
    (dict(init=np.zeros((4, 1, 3, 3), np.float32)), ValueError, r"init must have shape \(4, 3, 3, 3\)"),
    (dict(multichannel=1), TypeError, "multichannel must be a bool"),
])
def test_bad_inputs(kw, exc, match):
    args = dict(images=np.ones((2, 3, 8, 8), np.float32), filter_size=3, multichannel=True)
    args.update(kw)
    with pytest.raises(exc, match=match):
        LC.learn_conv_dictionary(args.pop("images"), 4, args.pop("filter_size"), 0.1, n_steps=1, progress=False,
                                 **args)


def test_dict_update_bad_inputs():
    z = np.zeros((2, 4, 8, 8))
    with pytest.raises(ValueError, match="s has 2 channel"):
        LC.dict_update(np.ones((4, 3, 3, 3)), z, np.ones((2, 2, 8, 8)))
    with pytest.raises(ValueError, match="one size per filter"):
        LC.dict_update(np.ones((4, 1, 3, 3)), z, np.ones((2, 8, 8)), filter_sizes=[3, 3])
    with pytest.raises(ValueError, match="filter_sizes"):
        LC.dict_update(np.ones((4, 1, 3, 3)), z, np.ones((2, 8, 8)), filter_sizes=[3, 3, 3, 4])


def test_multichannel_with_mesh_is_refused():
    import jax

    from sparsejax.distributed import batch_mesh

    with pytest.raises(ValueError, match="not supported with a multi-channel dictionary"):
        LC.learn_conv_dictionary(np.ones((2, 3, 8, 8), np.float32), 4, 3, 0.1, multichannel=True,
                                 mesh=batch_mesh(jax.devices()[:1]), n_steps=1, progress=False)
