"""Non-local search window against PSNR-Y and time: how ``window="auto"`` (``DEFAULT_WINDOW``) was chosen.

The paper searches the whole image (eq. 9), which costs O(N^2) for N pixels: minutes per photo on a
CPU. A search radius r restricts the candidates of every pixel to its (2r + 1)^2 neighbourhood
(O(N r^2)). This script evaluates the shipped weights on centre crops of the validation photos
(041-049 of the shared photos; the embedded held-out photo where they are absent) for several radii
and for the whole-crop search, with the library's default precision on this machine, and reports
PSNR-Y (crop = scale, mean over images and configurations) and seconds per output megapixel.

Usage (from the repository root; ``--docs`` refreshes the table in docs/model.md)::

    python benchmarks/window_choice.py --threads 2 --docs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py
TAG = "window-choice"
CONFIGS = ("jpeg10", "jpeg30", "jpeg50", "webp5", "webp20", "webp40")


def measure(weights: str, scale: int, windows: list, max_side: int, data) -> list[dict]:
    from cisr_lib.evaluate import evaluate
    from cisr_lib.pretrained import shipped_weights

    path = shipped_weights(scale, weights)
    rows = []
    for window in windows:
        res = evaluate(path, data, scales=(scale,), configs=CONFIGS, window=window, max_side=max_side, device="cpu")
        recs = res["records"]
        seconds = sum(r["seconds"] for r in recs)
        out_mp = sum(r["hr_shape"][0] * r["hr_shape"][1] for r in recs) / 1e6
        rows.append({"model": weights, "scale": scale, "window": window, "psnr": res["per_scale"][str(scale)]["psnr"],
                     "s_per_mp": seconds / out_mp, "images": len(recs), "precision": res["settings"]["precision"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict], header: str) -> str:
    lines = [header, "", "| model | window r (candidates) | PSNR-Y (dB) | vs whole crop | s per output MP |",
             "|---|---|---|---|---|"]
    for r in rows:
        full = next(x for x in rows if x["model"] == r["model"] and x["scale"] == r["scale"] and x["window"] is None)
        cand = "whole crop" if r["window"] is None else f"{r['window']} ({(2 * r['window'] + 1) ** 2})"
        lines.append(f"| {r['model']} x{r['scale']} | {cand} | {r['psnr']:.3f} | {r['psnr'] - full['psnr']:+.3f} | "
                     f"{r['s_per_mp']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-side", type=int, default=256, help="HR centre crop side (default 256)")
    ap.add_argument("--windows", type=int, nargs="+", default=[1, 2, 3, 5, 7])
    ap.add_argument("--models", nargs="+", default=["micro_x2", "micro_x4"], help="shipped NAME_xS weights")
    ap.add_argument("--docs", action="store_true", help="replace the table between the markers in docs/model.md")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "window_choice.json"))
    ap.add_argument("--render", action="store_true", help="only re-render the table of the saved --out JSON")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        quick(args, threads=1, max_side=48, windows=[1], models=["micro_x2"])
    if args.render:
        saved = json.loads(Path(args.out).read_text())
        return publish(table(saved["rows"], saved["header"]), REPO / "docs" / "model.md", TAG, args.docs)

    import torch

    from cisr_lib.evaluate import data_source

    torch.set_num_threads(args.threads)
    try:
        data, data_name = data_source("photos-val"), "validation photos 041-049"
    except FileNotFoundError:
        data, data_name = data_source("embedded-val"), "the embedded held-out photo"
    rows = []
    for spec in args.models:
        name, _, s = spec.partition("_x")
        rows += measure(name, int(s), [*args.windows, None], args.max_side, data)
    header = (f"Measured by `python benchmarks/window_choice.py --threads {args.threads}` on {time.strftime('%Y-%m-%d')}: "
              f"{data_name}, {args.max_side}x{args.max_side} HR centre crops, configurations {', '.join(CONFIGS)}; "
              f"{rows[0]['precision']}, {args.threads} thread(s) of {os.cpu_count()} cores; whole-image evaluation "
              "(no tiles).")
    md = table(rows, header)
    Path(args.out).write_text(json.dumps({"header": header, "rows": rows}, indent=1) + "\n")
    return publish(md, REPO / "docs" / "model.md", TAG, args.docs)


if __name__ == "__main__":
    sys.exit(main())
