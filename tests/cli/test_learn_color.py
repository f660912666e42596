"""`sparsejax learn --color`: a colour (3-channel) convolutional dictionary from RGB PNGs, saved as a colour PNG."""
import argparse

import numpy as np
from PIL import Image

from sparsejax.cli.learn import add_learn_parser, run_learn
from sparsejax.learn.conv import filters_to_image


def parse(argv):
    sub = argparse.ArgumentParser(prog="sparsejax").add_subparsers(dest="command")
    return add_learn_parser(sub).parse_args(argv)


def colour_pngs(folder, n=2, size=(16, 20), seed=0):
    """Smooth random RGB images whose channels differ (so that the filters are not grey)."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for i in range(n):
        a = rng.random((size[0] // 4, size[1] // 4, 3))
        a = np.kron(a, np.ones((4, 4, 1)))
        Image.fromarray(np.round(a * 255).astype(np.uint8), mode="RGB").save(folder / f"im{i}.png")


def test_learn_conv_color_writes_colour_filters(tmp_path, capsys):
    colour_pngs(tmp_path / "imgs")
    out = tmp_path / "colour.npz"
    args = parse([str(tmp_path / "imgs"), "--color", "--atoms", "4", "--size", "4", "--steps", "4", "--lam", "0.05",
                  "--out", str(out), "--quiet"])
    assert run_learn(args) == 0
    with np.load(out) as z:
        filters, loss, color = z["filters"], z["loss"], bool(z["color"])
    assert color and filters.shape == (4, 3, 4, 4)
    np.testing.assert_allclose(np.linalg.norm(filters.reshape(4, -1), axis=1), 1.0, rtol=1e-5)
    assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]
    # the channels of a filter differ: a colour dictionary, not three copies of a grey one
    assert max(np.abs(f[0] - f[1]).max() for f in filters) > 1e-3
    with Image.open(out.with_suffix(".png")) as im:
        assert im.mode == "RGB"
        png = np.asarray(im, np.float64) / 255.0
    np.testing.assert_allclose(png, filters_to_image(filters, scale=4), atol=0.5 / 255 + 1e-9)
    assert "colour image(s) 16x16" in capsys.readouterr().err


def test_learn_color_needs_conv(tmp_path, capsys):
    colour_pngs(tmp_path / "imgs")
    args = parse([str(tmp_path / "imgs"), "--color", "--kind", "dense", "--out", str(tmp_path / "d.npz")])
    assert run_learn(args) == 2
    assert "--color" in capsys.readouterr().err and not (tmp_path / "d.npz").exists()
