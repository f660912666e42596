"""Self-contained HTML report of reproduced experiments (figures inlined as base64 PNG) plus one JSON each.

Each experiment result is a dict {"name", "title", "description", "measured", "predicted", "figures",
"passed", "seconds"} (an "error" key marks an experiment that failed to run); figure names are relative to
``out_dir``.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import html
import json
import platform
from pathlib import Path

import jax
import jaxlib
import numpy as np

from sparsejax._version import VERSION

__all__ = ["write_report", "environment"]


def environment() -> dict:
    """Versions and devices, for the record."""


    env = {"sparsejax": VERSION, "jax": jax.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "platform": platform.platform()}
    env["jaxlib"] = jaxlib.__version__
    try:
        env["devices"] = [str(d) for d in jax.devices()]
        env["backend"] = jax.default_backend()
    except Exception as e:  # pragma: no cover
        env["devices"] = [f"unavailable: {e}"]
    env["x64_default"] = bool(jax.config.jax_enable_x64)
    return env


def _fmt(v, depth=0) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        if v and isinstance(v[0], (list, tuple)):
            return "<br>".join("[" + ", ".join(_fmt(x, depth + 1) for x in row) + "]" for row in v)
        return "[" + ", ".join(_fmt(x, depth + 1) for x in v) + "]"
    if isinstance(v, dict):
        return "; ".join(f"{html.escape(str(k))}: {_fmt(x, depth + 1)}" for k, x in v.items())
    if v is None:
        return "&ndash;"
    return html.escape(str(v))


def _table(d: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def _jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f4f4f4}.pass{color:#080;font-weight:bold}
.fail{color:#b00;font-weight:bold}pre{background:#f8f8f8;padding:.5em;white-space:pre-wrap;font-size:85%}
img{max-width:100%;border:1px solid #ddd;margin:.3em 0}.cols{display:flex;gap:1em}.cols>div{flex:1}"""


def write_report(results: list[dict], out_dir, title: str = "sparsejax: reproduced theory and experiments"
                 ) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and ``out_dir/<name>.json`` per experiment.

    Returns the path of the HTML file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    summary, sections = [], []
    for r in results:
        r = _jsonable(r)
        name = r.get("name", "unnamed")
        (out_dir / f"{name}.json").write_text(json.dumps({**r, "environment": env}, indent=2))
        status = "error" if r.get("error") else ("pass" if r.get("passed") else "fail")
        cls = "pass" if status == "pass" else "fail"
        summary.append(f"<tr><td><a href='#{html.escape(name)}'>{html.escape(name)}</a></td>"
                       f"<td>{html.escape(r.get('title', ''))}</td><td class='{cls}'>{status.upper()}</td>"
                       f"<td>{_fmt(r.get('seconds'))}</td></tr>")
        imgs = []
        for f in r.get("figures", []):
            p = out_dir / f
            if p.is_file():
                b64 = base64.b64encode(p.read_bytes()).decode("ascii")
                imgs.append(f"<img alt='{html.escape(f)}' src='data:image/png;base64,{b64}'>")
            else:
                imgs.append(f"<p class='fail'>missing figure {html.escape(f)}</p>")
        err = f"<pre class='fail'>{html.escape(r['error'])}</pre>" if r.get("error") else ""
        sections.append(
            f"<h2 id='{html.escape(name)}'>{html.escape(name)} <span class='{cls}'>[{status.upper()}]</span></h2>"
            f"<p><b>{html.escape(r.get('title', ''))}</b></p><pre>{html.escape(r.get('description', ''))}</pre>"
            f"{err}<div class='cols'><div><h3>Measured</h3>{_table(r.get('measured', {}))}</div>"
            f"<div><h3>Predicted</h3>{_table(r.get('predicted', {}))}</div></div>{''.join(imgs)}")
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p>Generated {stamp}</p>"
           f"<h2>Summary</h2><table><tr><th>experiment</th><th>title</th><th>status</th><th>seconds</th></tr>"
           f"{''.join(summary)}</table><h2>Environment</h2>{_table(env)}{''.join(sections)}</body></html>")
    path = out_dir / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path


def experiment_main(run, name: str, title: str, argv=None, presets=None) -> int:
    """The command line of a single experiment script: ``python experiments/NAME.py [--quick] [--out DIR] [--seed N]``
    (with ``presets``, a dict of named configurations, also ``--preset NAME``; ``--quick`` = ``--preset quick``).

    Runs ``run(quick, out_dir, seed)`` (with presets: ``run(quick, out_dir, seed, preset=NAME)``), writes
    ``DIR/NAME.json`` and returns 0 when the result passed.
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
        quick = a.quick or a.preset == "quick"
        res = run(quick, a.out, a.seed, preset=a.preset)
    else:
        res = run(a.quick, a.out, a.seed)
    (a.out / f"{name}.json").write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps({k: res.get(k) for k in ("name", "passed", "seconds")}))
    return 0 if res.get("passed") else 1


def select_preset(quick: bool, preset, presets: dict, out_dir, default: str = "short"):
    """(tag, config, out_dir) of an experiment with named presets: "quick" when ``quick``, else ``preset`` (default
    ``default``); ``out_dir`` is created. Raises ValueError naming the known presets."""
    tag = "quick" if quick else (preset or default)
    if tag not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {tag!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return tag, presets[tag], out_dir


def save_figure(fig, out_dir, name: str, dpi: int = 110) -> str:
    """Lay out, write ``out_dir/name`` as PNG and close ``fig`` (so long runs do not accumulate figures).

    Returns ``name`` (the file name the report links to).
    """
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(Path(out_dir) / name, dpi=dpi)
    plt.close(fig)
    return name
