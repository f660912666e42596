"""Learn a convolutional dictionary with checkpoints, interrupt the run, resume it, and get the same filters.

min_{||d_m|| = 1, x} 1/2 sum_k ||sum_m d_m * x_{k,m} - s_k||^2 + lam ||x||_1 over high-pass crops s_k of a photo
(interleaved ADMM, as SPORCO's ConvBPDNDictLearn). ``checkpoint_dir`` saves the whole state every few steps;
``stop_after`` simulates an interruption; the same call again resumes from the newest checkpoint (its settings are
checked) and finishes as the uninterrupted run would have.

Run:  python examples/learn_conv_dictionary_resume.py          (4 crops 128 x 128, 16 filters 8 x 8, 60 steps)
      python examples/learn_conv_dictionary_resume.py --quick  (2 crops 32 x 32, 4 filters 5 x 5, 6 steps)
Writes filters.png and the checkpoint folders under --out (default ./example_output).
"""
import argparse
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from sparsejax import imaging
from sparsejax.datasets.images import load_image
from sparsejax.learn.conv import learn_conv_dictionary, save_filters_png

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny problem, a few seconds")
parser.add_argument("--out", default="example_output", help="folder for the checkpoints and the PNG")
args = parser.parse_args()
crop, n_crops, n_filters, size, steps = (32, 2, 4, 5, 6) if args.quick else (128, 4, 16, 8, 60)
out = Path(args.out)
for folder in ("ckpt_uninterrupted", "ckpt_interrupted"):                # start afresh on a rerun
    shutil.rmtree(out / folder, ignore_errors=True)

# training images: high-pass parts of crops of the bundled photo (the smooth part is not sparse)
img = load_image("camera")
crops = [img[r:r + crop, c:c + crop] for r, c in [(100, 100), (300, 200), (50, 350), (350, 380)][:n_crops]]
S = jnp.stack([imaging.tikhonov_split(jnp.asarray(c), 5.0, npad=8)[1] for c in crops])
settings = {"n_steps": steps, "checkpoint_every": max(1, steps // 6), "progress": False}
lam = 0.1

full = learn_conv_dictionary(S, n_filters, size, lam, checkpoint_dir=out / "ckpt_uninterrupted", **settings)
print(f"uninterrupted: {full.loop.message}")

ckpt = out / "ckpt_interrupted"
part = learn_conv_dictionary(S, n_filters, size, lam, checkpoint_dir=ckpt, stop_after=steps // 2, **settings)
print(f"first run:     {part.loop.message}; checkpoints: {sorted(p.name for p in ckpt.iterdir())}")
rest = learn_conv_dictionary(S, n_filters, size, lam, checkpoint_dir=ckpt, **settings)  # same call: resumes
print(f"second run:    {rest.loop.message}")

loss = np.asarray(full.loop.history["loss"])
print(f"objective: step 1 {loss[0]:.4f} -> step {steps} {loss[-1]:.4f}")
print(f"resumed from step {rest.loop.resumed_from}; max |filters resumed - uninterrupted| ="
      f" {float(jnp.max(jnp.abs(rest.filters - full.filters))):.1e}")
print(f"wrote {save_filters_png(out / 'filters.png', rest.filters)}")
