"""Inpaint a photo with half of its pixels missing, by masked convolutional sparse coding.

With a mask W (1 = known pixel), the smooth part comes from a masked Tikhonov fit and the rest from the masked CBPDN
min_x 1/2 ||W (sum_m d_m * x_m - h)||^2 + lam ||x||_1: the filters d_m (a bundled learned dictionary) fill in the
missing pixels from the known ones around them.

Run:  python examples/inpaint_photo.py            (256 x 256 crop of the camera image, 50% missing, 300 iterations)
      python examples/inpaint_photo.py --quick    (64 x 64 crop, 40 iterations)
Writes inpaint.png (clean | damaged | restored) to --out (default ./example_output).
"""
import argparse
from pathlib import Path

import jax
import numpy as np

from sparsejax import imaging
from sparsejax.datasets.images import load_conv_dictionary, load_image, save_image

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny crop, a few seconds")
parser.add_argument("--missing", type=float, default=0.5, help="fraction of missing pixels")
parser.add_argument("--out", default="example_output", help="folder for the PNG")
args = parser.parse_args()
size, iters = (64, 40) if args.quick else (256, 300)

img = load_image("camera")                                             # (512, 512) grey, values in [0, 1]
r0, c0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
clean = img[r0:r0 + size, c0:c0 + size]
mask = imaging.random_mask(jax.random.PRNGKey(0), clean.shape, args.missing)  # 1 = known, 0 = missing
damaged = mask * clean                                                 # missing pixels shown black

restored, info = imaging.csc_inpaint(damaged, mask, load_conv_dictionary(), max_iter=iters, keep_known=True)
known = mask > 0
before, after = float(imaging.psnr(clean, damaged)), float(imaging.psnr(clean, restored))
err_missing = float(np.sqrt(np.mean((np.asarray(restored) - clean)[~np.asarray(known)] ** 2)))
print(f"image {size} x {size}, {100 * float(1 - mask.mean()):.0f}% of the pixels missing, lam {float(info['lam']):.4g}")
print(f"ADMM: {int(info['num_steps'])} iterations, converged {bool(info['converged'])}")
print(f"RMS error on the missing pixels: {err_missing:.4f} (known pixels are kept)")
print(f"PSNR damaged {before:.2f} dB -> inpainted {after:.2f} dB (gain {after - before:+.2f} dB)")

out = Path(args.out)
panel = np.concatenate([clean, np.asarray(damaged), np.asarray(restored)], axis=1)
print(f"wrote {save_image(out / 'inpaint.png', np.clip(panel, 0, 1))}")
