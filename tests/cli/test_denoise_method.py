"""``sparsejax denoise --method ksvd``: PNG in and out, the parameters printed, the result denoised; csc stays the
default."""
import numpy as np
import pytest

from sparsejax.cli import commands as cli
from sparsejax.datasets.images import load_image, save_image
from sparsejax.imaging import psnr


@pytest.mark.slow       # ~7 s CPU: the whole K-SVD pipeline compiles again in this module
def test_denoise_ksvd_writes_a_denoised_png_and_prints_its_parameters(tmp_path, capsys):
    clean = load_image("camera")[200:232, 220:252]
    noisy = clean + (20 / 255) * np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    save_image(tmp_path / "noisy.png", noisy)
    noisy8 = load_image(tmp_path / "noisy.png")
    code = cli.main(["denoise", str(tmp_path / "noisy.png"), str(tmp_path / "out.png"), "--method", "ksvd",
                     "--sigma", "20", "--patch", "4", "--atoms", "64", "--ksvd-iters", "2"])
    assert code == 0
    err = capsys.readouterr().err
    assert "sigma 20.00 grey levels (given)" in err and "4x4 patches, 64 atoms" in err and "2 K-SVD" in err
    assert "lam = 30/sigma = 1.5" in err and "met the error target" in err
    out = load_image(tmp_path / "out.png")
    assert out.shape == clean.shape
    assert float(psnr(clean, out)) > float(psnr(clean, noisy8)) + 3.0


def test_denoise_method_default_and_bad_sigma(tmp_path, capsys):
    args = cli.build_parser().parse_args(["denoise", "a.png", "b.png"])
    assert args.method == "csc" and args.ksvd_iters == 10 and args.patch == 8 and args.atoms == 256
    save_image(tmp_path / "in.png", np.full((16, 16), 0.5, np.float32))
    assert cli.main(["denoise", str(tmp_path / "in.png"), str(tmp_path / "o.png"), "--method", "ksvd",
                     "--sigma", "-1"]) == 2
    assert "--sigma must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_inpaint_patch_method_fills_the_missing_pixels(tmp_path, capsys):
    clean = load_image("camera")[200:216, 220:236]
    mask = (np.random.default_rng(1).random(clean.shape) > 0.3).astype(np.float32)
    save_image(tmp_path / "in.png", clean * mask)
    save_image(tmp_path / "mask.png", mask)
    code = cli.main(["inpaint", str(tmp_path / "in.png"), str(tmp_path / "mask.png"), str(tmp_path / "out.png"),
                     "--method", "patch", "--patch", "4", "--keep-known"])
    assert code == 0
    err = capsys.readouterr().err
    assert "4x4 patches" in err and "% missing" in err
    out = load_image(tmp_path / "out.png")
    fill = np.where(mask > 0, clean, clean[mask > 0].mean())
    assert float(psnr(clean, out)) > float(psnr(clean, fill)) + 3.0
    assert cli.build_parser().parse_args(["inpaint", "a", "b", "c"]).method == "csc"
