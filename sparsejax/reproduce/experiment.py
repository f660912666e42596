"""The run / save / report boilerplate every experiment of ``experiments/`` shares.

An experiment script names its configurations (``PRESETS``: at least ``"quick"``, the seconds-long one that CI
runs) and writes only its science; this module does the rest:

    EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="full")

    def run(quick, out_dir, seed=0, preset=None):
        trial = EXPERIMENT.start(quick, preset, out_dir, seed)   # preset chosen, out_dir created, clock started
        ...                                                      # trial.config, trial.out_dir, save_figure(...)
        return EXPERIMENT.result(trial, measured=..., predicted=..., figures=[...], passed=..., claim_shown=...)

    if __name__ == "__main__":
        raise SystemExit(EXPERIMENT.main(run))      # python experiments/NAME.py [--quick | --preset P] ...

A result is the dict the report (``sparsejax.reproduce.report.write_report``) and ``sparsejax reproduce`` read:
``name``, ``title``, ``description``, ``preset``, ``seed``, ``measured`` and ``predicted`` (the numbers next to
the theory's), ``figures`` (PNG names relative to the output folder), ``seconds``, and two separate verdicts:

* ``passed``: the experiment ran correctly, i.e. every check it asserts held (the exit status of the script
  and of ``sparsejax reproduce``);
* ``claim_shown``: whether the published claim the experiment reproduces is shown at this scale (True or
  False; None when the preset cannot decide it). The report says PASS only when both hold.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

__all__ = ["Experiment", "Trial", "experiment_main", "select_preset", "save_figure"]


def select_preset(quick: bool, preset, presets: Mapping, out_dir, default: str = "short"):
    """Pick an experiment's configuration and create its output folder.

    The preset is ``"quick"`` when ``quick`` is set, else ``preset``, else ``default``.

    Args:
      quick: the small preset (what CI and ``--quick`` run).
      preset: a preset name, or None for ``default``.
      presets: name -> configuration dict.
      out_dir: the output folder (created with its parents).
      default: the preset used when neither ``quick`` nor ``preset`` is given.

    Returns:
      ``(name, config, out_dir)`` with ``out_dir`` a ``Path``.

    Raises:
      ValueError naming the known presets when the chosen one is not among them.

    Example:
      >>> import tempfile
      >>> from sparsejax.reproduce.experiment import select_preset
      >>> presets = {"quick": {"n": 8}, "full": {"n": 512}}
      >>> tag, cfg, out = select_preset(False, None, presets, tempfile.mkdtemp(), default="full")
      >>> tag, cfg["n"], out.is_dir()
      ('full', 512, True)
      >>> select_preset(True, None, presets, out)[0]
      'quick'
    """
    tag = "quick" if quick else (preset or default)
    if tag not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {tag!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return tag, presets[tag], out_dir


def save_figure(fig, out_dir, name: str, dpi: int = 110) -> str:
    """Lay out ``fig``, write it as the PNG ``out_dir/name`` and close it (long runs do not pile up figures).

    Args:
      fig: a Matplotlib figure (``matplotlib.figure.Figure``).
      out_dir: an existing folder.
      name: the file name, ending in ``.png``.
      dpi: resolution.

    Returns:
      ``name``: the file name the report links to (relative to ``out_dir``).

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from matplotlib.figure import Figure
      >>> from sparsejax.reproduce.experiment import save_figure
      >>> fig = Figure(figsize=(2, 2))
      >>> _ = fig.add_subplot().plot([0, 1], [1, 0])
      >>> out = Path(tempfile.mkdtemp())
      >>> save_figure(fig, out, "line.png", dpi=50), (out / "line.png").read_bytes()[1:4]
      ('line.png', b'PNG')
    """
    import matplotlib.pyplot as plt   # a plotting backend starts only where a figure is written

    fig.tight_layout()
    fig.savefig(Path(out_dir) / name, dpi=dpi)
    plt.close(fig)
    return name


def experiment_main(run: Callable[..., dict], name: str, title: str, argv=None, presets: Mapping | None = None
                    ) -> int:
    """The command line of one experiment script:
    ``python experiments/NAME.py [--quick | --preset P] [--out DIR] [--seed N]``.

    Runs ``run(quick, out_dir, seed)`` (with ``presets``: ``run(quick, out_dir, seed, preset=P)``, where
    ``--quick`` is ``--preset quick``), writes the result to ``DIR/NAME.json`` and prints its name, verdicts and
    seconds as one JSON line.

    Args:
      run: the experiment's run function; returns a result dict (see the module docstring).
      name: the experiment's name (the JSON file's stem).
      title: one line, the command's description.
      argv: the arguments (default ``sys.argv[1:]``).
      presets: the experiment's named configurations (offers ``--preset``), or None.

    Returns:
      The exit status: 0 when the result passed, 1 otherwise.

    Example:
      >>> import json, tempfile
      >>> from pathlib import Path
      >>> from sparsejax.reproduce.experiment import experiment_main
      >>> def run(quick, out_dir, seed=0):
      ...     return {"name": "toy", "passed": quick, "claim_shown": None, "seconds": 0.0}
      >>> out = Path(tempfile.mkdtemp())
      >>> experiment_main(run, "toy", "a toy", argv=["--quick", "--out", str(out)])
      {"name": "toy", "passed": true, "claim_shown": null, "seconds": 0.0}
      0
      >>> json.loads((out / "toy.json").read_text())["passed"]
      True
    """
    ap = argparse.ArgumentParser(description=title)
    ap.add_argument("--quick", action="store_true", help="the small preset (seconds; what CI runs)")
    if presets:
        ap.add_argument("--preset", choices=sorted(presets), default=None,
                        help="a named configuration (see the script's docstring)")
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if presets:
        res = run(a.quick or a.preset == "quick", a.out, a.seed, preset=a.preset)
    else:
        res = run(a.quick, a.out, a.seed)
    (a.out / f"{name}.json").write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps({k: res.get(k) for k in ("name", "passed", "claim_shown", "seconds")}))
    return 0 if res.get("passed") else 1


class Trial(NamedTuple):
    """One run of an experiment, as ``Experiment.start`` begins it.

    Attributes:
      preset: the preset's name ("quick", "short", "full", ...).
      config: the preset's configuration dict.
      out_dir: the output folder (exists).
      seed: the random seed.
      started: ``time.time()`` at the start.
    """

    preset: str
    config: dict
    out_dir: Path
    seed: int
    started: float


class Experiment(NamedTuple):
    """What an experiment script declares once: its name, title, description and presets.

    Attributes:
      name: the registry name (``sparsejax.reproduce.registry.EXPERIMENTS``) and the stem of its JSON file.
      title: one line.
      description: the script's docstring (what is measured, the paper, the pass criterion).
      presets: preset name -> configuration dict; holds ``"quick"``.
      default: the preset run when neither ``--quick`` nor ``--preset`` is given.

    Example:
      >>> import tempfile
      >>> from sparsejax.reproduce.experiment import Experiment
      >>> toy = Experiment("toy", "a toy", "Adds two numbers.", {"quick": {"n": 2}, "full": {"n": 9}})
      >>> trial = toy.start(True, None, tempfile.mkdtemp(), seed=3)
      >>> res = toy.result(trial, measured={"sum": trial.config["n"] + 1}, predicted={"sum": 3}, figures=[],
      ...                  passed=True, claim_shown=True)
      >>> res["preset"], res["seed"], res["measured"]["sum"], res["passed"], res["claim_shown"]
      ('quick', 3, 3, True, True)
    """

    name: str
    title: str
    description: str
    presets: Mapping[str, dict]
    default: str = "full"

    def start(self, quick: bool, preset, out_dir, seed: int = 0) -> Trial:
        """Begin a run: choose the preset (``select_preset``), create ``out_dir``, start the clock.

        Args:
          quick: run the ``"quick"`` preset.
          preset: a preset name, or None for ``self.default``.
          out_dir: the output folder.
          seed: the random seed (recorded in the result).

        Returns:
          The ``Trial``.

        Raises:
          ValueError naming the known presets for an unknown ``preset``.

        Example:
          >>> import tempfile
          >>> from sparsejax.reproduce.experiment import Experiment
          >>> toy = Experiment("toy", "a toy", "", {"quick": {"n": 2}, "full": {"n": 9}})
          >>> trial = toy.start(False, None, tempfile.mkdtemp())
          >>> trial.preset, trial.config["n"], trial.out_dir.is_dir()
          ('full', 9, True)
        """
        started = time.time()
        tag, config, out_dir = select_preset(quick, preset, self.presets, out_dir, default=self.default)
        return Trial(tag, config, out_dir, int(seed), started)

    def result(self, trial: Trial, *, measured: dict, predicted: dict, figures: list, passed: bool,
               claim_shown: bool | None) -> dict:
        """The result dict of a finished run (the fields of the module docstring), timed from ``trial.started``.

        Args:
          trial: from ``start``.
          measured: the measured numbers.
          predicted: what the theory or the paper predicts, next to them.
          figures: the PNG file names written into ``trial.out_dir``.
          passed: the run is correct: every check the experiment asserts held.
          claim_shown: the claim's verdict at this scale (None: not decidable with this preset).

        Returns:
          The result dict.

        Example:
          >>> import tempfile
          >>> from sparsejax.reproduce.experiment import Experiment
          >>> toy = Experiment("toy", "a toy", "  Counts.  ", {"quick": {}})
          >>> res = toy.result(toy.start(True, None, tempfile.mkdtemp()), measured={}, predicted={}, figures=[],
          ...                  passed=True, claim_shown=None)
          >>> res["description"], res["claim_shown"], res["seconds"] >= 0
          ('Counts.', None, True)
        """
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description.strip(),
            "preset": trial.preset,
            "seed": trial.seed,
            "measured": measured,
            "predicted": predicted,
            "figures": list(figures),
            "passed": bool(passed),
            "claim_shown": None if claim_shown is None else bool(claim_shown),
            "seconds": round(time.time() - trial.started, 2),
        }

    def main(self, run: Callable[..., dict], argv=None) -> int:
        """The script's command line: ``experiment_main`` with this experiment's name, title and presets.

        Args:
          run: the experiment's ``run(quick, out_dir, seed, preset=None)``.
          argv: the arguments (default ``sys.argv[1:]``).

        Returns:
          The exit status: 0 when the result passed, 1 otherwise.

        Example:
          >>> import tempfile
          >>> from sparsejax.reproduce.experiment import Experiment
          >>> toy = Experiment("toy", "a toy", "", {"quick": {"ok": True}, "full": {"ok": False}})
          >>> def run(quick, out_dir, seed=0, preset=None):
          ...     trial = toy.start(quick, preset, out_dir, seed)
          ...     return toy.result(trial, measured={}, predicted={}, figures=[], passed=trial.config["ok"],
          ...                       claim_shown=None)
          >>> toy.main(run, ["--preset", "full", "--out", tempfile.mkdtemp()])   # doctest: +ELLIPSIS
          {"name": "toy", "passed": false, "claim_shown": null, "seconds": ...}
          1
        """
        return experiment_main(run, self.name, self.title, argv=argv, presets=self.presets)
