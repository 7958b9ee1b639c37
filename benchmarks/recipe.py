"""The training recipe, chosen by measurement: arms of equal wall-clock from the same start.

Each arm is one ``cisr train`` process with the same model (micro x2 with the CPU engine's search
radius 3), data (the shared photos 001-040), seed, initial weights (default: the shipped
``micro_x2.pt``), validation (192-pixel centre crops of photos 041-049 in the 10 paper configs)
and training minutes (validation time is not counted), on one thread, one arm after another.
The arms change one thing each against ``base`` (lr 1e-3, 50 warm-up steps, gradient clipping
at 1, batch 8 of 32x32 LR patches, cosine schedule over the preset's 20,000 steps):

* ``ema``: validate and keep an exponential moving average of the weights (decay 0.999);
* ``batch16``: batch 16 (half as many steps in the same time);
* ``lr5e-4`` / ``lr2e-3``: half / twice the learning rate;
* ``noclip``: no gradient clipping;
* ``patch48``: the paper's 48x48 LR patches (fewer steps in the same time);
* ``charbonnier``: eq. (12) with a Charbonnier (smooth L1) norm instead of L1 (``--loss``).

``noclip``, ``patch48`` and ``charbonnier`` train only when named in ``--only``. A later probe has its
own block, JSON and run folders, named after its tag: ``--tag recipe-patch`` (the patch probe:
``benchmarks/recipe_patch.json``, ``runs/recipe_patch``) or ``--tag recipe-loss`` (the loss probe).

Usage (from the repository root; ``--docs`` fills the ``recipe`` block of docs/training.md and
draws docs/figures/recipe.png from the logs)::

    python benchmarks/recipe.py --minutes 10 --docs           # all arms: about an hour
    python benchmarks/recipe.py --only base ema --minutes 10
    python benchmarks/recipe.py --only --docs                 # collect the runs kept: JSON, table, figure
    python benchmarks/recipe.py --render --docs               # the table again from benchmarks/recipe.json
    python benchmarks/recipe.py --only base patch48 --minutes 8 --tag recipe-patch --docs
    python benchmarks/recipe.py --only base charbonnier --minutes 8 --tag recipe-loss --docs

Runs are kept in ``runs/recipe/ARM`` and resumed when re-run with the same settings; the committed
``benchmarks/recipe.json`` holds every curve, and ``tests/test_benchmark_blocks.py`` checks that the
docs block is what it renders.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py

TAG = "recipe"
PATCH_TAG = "recipe-patch"  # docs/training.md: the patch-size probe (benchmarks/recipe_patch.json)
LOSS_TAG = "recipe-loss"  # docs/training.md: L1 against Charbonnier (benchmarks/recipe_loss.json)
TAGS = (TAG, PATCH_TAG, LOSS_TAG)  # each later probe: its own JSON and runs folder, named after its tag
BASE = ["--lr", "1e-3", "--warmup", "50", "--grad-clip", "1.0"]
ARMS: dict[str, list[str]] = {
    "base": BASE,
    "ema": BASE + ["--ema", "0.999"],
    "batch16": BASE + ["--batch-size", "16"],
    "lr5e-4": ["--lr", "5e-4", "--warmup", "50", "--grad-clip", "1.0"],
    "lr2e-3": ["--lr", "2e-3", "--warmup", "50", "--grad-clip", "1.0"],
    "noclip": ["--lr", "1e-3", "--warmup", "50"],
    "patch48": BASE + ["--patch", "48"],  # the paper's LR patch side (not in the study of 2026-12-05)
    "charbonnier": BASE + ["--loss", "charbonnier"],  # a smooth L1 in place of eq. (12)'s
}
CHANGES = {"base": "(the reference)", "ema": "--ema 0.999", "batch16": "--batch-size 16", "lr5e-4": "--lr 5e-4",
           "lr2e-3": "--lr 2e-3", "noclip": "no --grad-clip", "patch48": "--patch 48",
           "charbonnier": "--loss charbonnier"}
EXTRA = ("noclip", "patch48", "charbonnier")  # arms trained only when named in --only
RUNS = REPO / "runs" / "recipe"
DATA = "photos"  # --quick: "embedded" (the shared photos may be absent)
STOPPED = "stopped.txt"  # an arm's error line (e.g. a diverged loss), written where it stopped
DOC = REPO / "docs" / "training.md"
FIGURE = REPO / "docs" / "figures" / "recipe.png"


def _train(arm: str, minutes: float, init: str, val_every: int) -> None:
    cmd = [sys.executable, "-m", "cisr_lib.cli", "train", "--out", str(RUNS / arm), "--model", "micro", "--scale", "2",
           "--preset", "cpu", "--data", DATA, "--set", "window=3", "--init", init, "--val-every", str(val_every),
           "--val-crop", "192", "--minutes", str(minutes), "--threads", "1", "--patience", "1000", "--quiet",
           *ARMS[arm]]
    print(f"[{time.strftime('%H:%M:%S')}] {arm}: {' '.join(cmd[3:])}", flush=True)
    (RUNS / arm).mkdir(parents=True, exist_ok=True)
    (RUNS / arm / STOPPED).unlink(missing_ok=True)  # a rerun that finishes is not reported as stopped
    r = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:  # a diverged arm is a result, not a failure of the study
        message = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit status {r.returncode}"
        print(f"  {arm}: {message}", flush=True)
        (RUNS / arm / STOPPED).write_text(message + "\n")


def _curves(arms: list[str]) -> dict[str, list[tuple[float, int, float]]]:
    """arm -> [(training minutes, step, validation gain over bicubic in dB)] from its log."""
    from cisr_lib.train import read_log

    out = {}
    for arm in arms:
        if (RUNS / arm / "log.jsonl").exists():
            vals = read_log(RUNS / arm)[1]
            if not vals:  # stopped before its first validation: nothing to plot (the table says why)
                continue
            out[arm] = [(v["elapsed"] / 60, v["step"], v["val_psnr"] - v["val_bicubic"]) for v in vals]
    return out


def _stopped(arm: str) -> str | None:
    path = RUNS / arm / STOPPED
    return path.read_text().strip() if path.exists() else None


def _figure(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for arm, pts in curves.items():
        ax.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", ms=3, label=arm)
    ax.set_xlabel("training minutes (one CPU thread)")
    ax.set_ylabel("validation gain over bicubic (dB)")
    ax.set_title("micro x2 from the shipped weights: one change per arm")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def render(res: dict, figure: bool = True) -> str:
    """The docs block of a saved result (benchmarks/recipe.json; ``figure``: the first study's figure below it)."""
    tag = res.get("tag", PATCH_TAG if set(res["curves"]) & set(EXTRA) else TAG)  # saved since the loss probe
    only = f" --only {' '.join(res['curves'])} --tag {tag}" if tag != TAG else ""
    return "\n".join([
        f"`python benchmarks/recipe.py{only} --minutes {res['minutes']:g}` on {res['date']}: micro x2 from "
        f"`{res['init']}`, {res['minutes']:g} training minutes per arm on one thread of this {res['cores']}-core CPU, "
        f"validation every {res['val_every']} steps (gain = mean PSNR-Y over bicubic on 192-pixel crops of photos "
        "041-049, 10 configs):", "", _table(res["curves"], res.get("stopped", {}))]
        + (["", "![validation gain against training minutes](figures/recipe.png)"] if figure else []))


def _table(curves: dict, stopped_by: dict) -> str:
    rows = ["| arm | change | steps | validations: gain at each (dB) | gain at the end (dB) | best gain (dB) | how it ended |",
            "|---|---|---|---|---|---|---|"]
    for arm, pts in curves.items():
        stopped = stopped_by.get(arm)
        ended = "time budget" if stopped is None else stopped.replace("cisr train: error: ", "").split(". ")[0]
        gains = ", ".join(f"{p[2]:+.3f}" for p in pts)
        rows.append(f"| {arm} | {CHANGES[arm]} | {pts[-1][1]:,} | {len(pts)}: {gains} | "
                    f"{pts[-1][2]:+.3f} | {max(p[2] for p in pts):+.3f} | {ended} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(ARMS), default=[a for a in ARMS if a not in EXTRA],
                    help="arms to train (none: only collect the runs kept in runs/recipe)")
    ap.add_argument("--minutes", type=float, default=10.0, help="training minutes per arm")
    ap.add_argument("--val-every", type=int, default=300)
    ap.add_argument("--init", default=str(REPO / "cisr_lib" / "weights" / "micro_x2.pt"))
    ap.add_argument("--render", action="store_true", help="only the docs block, from the saved --out JSON")
    ap.add_argument("--docs", action="store_true")
    ap.add_argument("--tag", default=TAG, choices=TAGS,
                    help="the docs block to fill (the figure is drawn for the first study's block only)")
    ap.add_argument("--out", help="the saved JSON (default: benchmarks/recipe.json, or the tag's, e.g. "
                    f"recipe_patch.json with --tag {PATCH_TAG})")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    global RUNS, DATA
    stem = args.tag.replace("-", "_")  # a later probe: its own JSON and run folders, apart from the first study's
    args.out = args.out or str(REPO / "benchmarks" / f"{stem}.json")
    RUNS = REPO / "runs" / stem
    if args.quick:
        RUNS, DATA = quick(args, only=["base"], minutes=0.05, val_every=5) / "recipe", "embedded"

    if args.render:  # from the saved JSON: the docs block is always what its JSON renders
        res = json.loads(Path(args.out).read_text())
        return publish(render(res, figure=args.tag == TAG), DOC, args.tag, args.docs)
    for arm in args.only:
        _train(arm, args.minutes, args.init, args.val_every)
    curves = _curves(list(ARMS))
    if not curves:
        print(f"no recipe runs in {RUNS} with a validation", file=sys.stderr)
        return 2
    ran = {json.loads((RUNS / a / "config.json").read_text())["train"]["max_minutes"] for a in curves}
    res = {"date": time.strftime("%Y-%m-%d"), "tag": args.tag, "minutes": ran.pop() if len(ran) == 1 else args.minutes,
           "init": Path(args.init).name, "cores": os.cpu_count(), "val_every": args.val_every,
           "arms": {a: ARMS[a] for a in curves}, "curves": curves,
           "stopped": {a: _stopped(a) for a in ARMS if _stopped(a)}}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    if args.docs and args.tag == TAG:
        _figure(curves, FIGURE)
    return publish(render(res, figure=args.tag == TAG), DOC, args.tag, args.docs)


if __name__ == "__main__":
    sys.exit(main())
