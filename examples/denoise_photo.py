"""Denoise a photo by convolutional sparse coding (CBPDN) with a bundled learned dictionary.

The noisy image s = x + N(0, sigma^2) is split into a smooth part (Tikhonov low-pass) and a high-pass part h;
h is coded as sum_m d_m * x_m with min_x 1/2 ||sum_m d_m * x_m - h||^2 + lam ||x||_1 (Fourier ADMM), and the
clean image is low + sum_m d_m * x_m. The default lam is 2.5 times the estimated noise sigma.

Run:  python examples/denoise_photo.py            (256 x 256 crop of the camera image, sigma = 0.1, 200 iterations)
      python examples/denoise_photo.py --quick    (64 x 64 crop, 30 iterations)
Writes denoise.png (clean | noisy | denoised) to --out (default ./example_output).
"""
import argparse
from pathlib import Path

import jax
import numpy as np

from sparsejax import imaging
from sparsejax.datasets.images import load_conv_dictionary, load_image, save_image

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny crop, a few seconds")
parser.add_argument("--sigma", type=float, default=0.1, help="noise standard deviation ([0, 1] image)")
parser.add_argument("--out", default="example_output", help="folder for the PNG")
args = parser.parse_args()
size, iters = (64, 30) if args.quick else (256, 200)

img = load_image("camera")                                             # (512, 512) grey, values in [0, 1]
r0, c0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
clean = img[r0:r0 + size, c0:c0 + size]
filters = load_conv_dictionary()                                       # (32, 1, 8, 8): SPORCO's G_8x8x32
noisy = imaging.add_noise(jax.random.PRNGKey(0), clean, args.sigma)

denoised, info = imaging.csc_denoise(noisy, filters, max_iter=iters)
before, after = float(imaging.psnr(clean, noisy)), float(imaging.psnr(clean, denoised))
print(f"image {size} x {size}, sigma {args.sigma}, dictionary {filters.shape}, lam {float(info['lam']):.4f}")
print(f"ADMM: {int(info['num_steps'])} iterations, converged {bool(info['converged'])},"
      f" nonzero codes {100 * float(info['nnz_fraction']):.2f}%")
print(f"PSNR noisy {before:.2f} dB -> denoised {after:.2f} dB (gain {after - before:+.2f} dB)")

out = Path(args.out)
panel = np.concatenate([clean, np.asarray(noisy), np.asarray(denoised)], axis=1)
print(f"wrote {save_image(out / 'denoise.png', np.clip(panel, 0, 1))}")
