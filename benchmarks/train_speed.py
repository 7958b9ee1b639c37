"""Validation PSNR gained per minute of CPU training: the old engine against the new configuration.

Steps per second alone do not say whether a faster configuration learns as much per step, so this
script trains each candidate for the same wall-clock budget on the same data, seed and validation
(``cisr train --data photos``: photos 001-040, validated on 96x96 HR centre crops of photos 041-049
in the 10 paper configurations, every ``--val-every`` steps; validation time is not training time)
and reports the mean PSNR-Y gain over bicubic against minutes of training. Runs go one after the
other, never two at once. Candidates:

* ``before``: a git revision (``--baseline-rev``) with its ``cpu`` preset: fp32, whole-image search;
* ``engine``: this code, the same recipe, ``precision="auto"`` and a search window of radius 3 in
  training (the default of inference on the CPU, docs/model.md "Search window");
* ``engine+lr``: ``engine`` with learning rate 2e-3 and 100 warm-up steps (the recipe probe of the
  weights issue, which led the ``cpu`` preset's 4e-4 at every validation in fp32);
* ``engine+lr, 64 features``: the same with a 64-feature trunk of one group of 4 RCABs per module
  (channel attention with 4 hidden units instead of micro's 2), a configuration whose convolutions
  gain more from bf16 (docs/model.md, kernel table).

"Gain per minute" is compared as the minutes each run needs to reach the gain ``before`` reached at
the end of its budget (linear interpolation between validations); the speed-up is the ratio.

Usage (from the repository root)::

    python benchmarks/train_speed.py --minutes 10 --baseline-rev 6dea505 --readme
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, baseline_worktree, publish, quick  # benchmarks/blocks.py
TAG = "train-speed"

CANDIDATES = {
    "before": [],
    "engine": ["--set", "window=3"],
    "engine+lr": ["--set", "window=3", "--lr", "2e-3", "--warmup", "100"],
    "engine+lr, 64 features": ["--set", "window=3", "n_feats=64", "n_groups=1", "n_blocks=4", "--lr", "2e-3",
                               "--warmup", "100"],
}


def train_run(root: Path, out: Path, minutes: float, val_every: int, threads: int, extra: list[str],
              data: str = "photos") -> list[dict]:
    """Run ``cisr train`` from ``root``'s code; returns the validation records of its log (``data``: "photos",
    the measurement, or "embedded", ``--quick``)."""
    args = ["train", "--model", "micro", "--scale", "2", "--preset", "cpu", "--data", data, "--val-crop", "96",
            "--val-every", str(val_every), "--patience", "1000", "--minutes", str(minutes), "--threads", str(threads),
            "--seed", "0", "--quiet", "--out", str(out), *extra]
    code = f"import sys; sys.path.insert(0, {str(root)!r}); from cisr_lib.cli import main; sys.exit(main({args!r}))"
    from cisr_lib.data import shared_photos

    env = {k: v for k, v in os.environ.items() if k != "CISR_PRECISION"}
    photos = shared_photos() if data == "photos" else None
    if data == "photos" and photos is None:
        raise SystemExit("the shared photos are not available (set CISR_PHOTOS to their folder)")
    if photos is not None:
        env["CISR_PHOTOS"] = str(Path(photos[0]).resolve().parent)  # a worktree elsewhere finds them too
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"training in {root} failed:\n{r.stderr[-3000:]}")
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    steps = {r["step"]: r["elapsed"] for r in recs if "loss" in r}
    return [{"step": v["step"], "minutes": steps.get(v["step"], v.get("elapsed", 0)) / 60,
             "gain": v["val_psnr"] - v["val_bicubic"], "psnr": v["val_psnr"]} for v in recs if "val_psnr" in v]


def minutes_to(curve: list[dict], gain: float) -> float | None:
    """First time (minutes, interpolated) the curve reaches ``gain``; None if it never does."""
    prev = {"minutes": 0.0, "gain": min(0.0, curve[0]["gain"]) if curve else 0.0}
    for c in curve:
        if c["gain"] >= gain:
            if c["gain"] == prev["gain"]:
                return c["minutes"]
            return prev["minutes"] + (gain - prev["gain"]) / (c["gain"] - prev["gain"]) * (c["minutes"] - prev["minutes"])
        prev = c
    return None


def report(res: dict) -> str:
    target = res["runs"]["before"][-1]["gain"] if "before" in res["runs"] else None
    lines = [f"Measured by `python benchmarks/train_speed.py --minutes {res['minutes']:g}"
             f"{' --baseline-rev ' + res['baseline_rev'] if res['baseline_rev'] else ''}` (a row can be redone with "
             f"`--only NAME`) on {res['date']} "
             f"({res['cores']} cores, {res['threads']} threads, one run at a time): micro x2 from scratch, photos "
             "001-040, seed 0; validation on 96x96 crops of photos 041-049, the 10 paper configs.", "",
             "| run | steps | s per step | final gain over bicubic (dB) | minutes to reach `before`'s final gain | speed-up |",
             "|---|---|---|---|---|---|"]
    base_min = res["runs"]["before"][-1]["minutes"] if "before" in res["runs"] else None
    for name, curve in res["runs"].items():
        last = curve[-1]
        t = minutes_to(curve, target) if target is not None else None
        speed = f"{base_min / t:.1f}x" if (t and base_min) else ("n/a" if t is None else "")
        lines.append(f"| {name} | {last['step']} | {60 * last['minutes'] / max(1, last['step']):.2f} | "
                     f"{last['gain']:+.3f} | {'never' if t is None else f'{t:.1f}'} | {speed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--baseline-rev", help="git revision of the 'before' run")
    ap.add_argument("--only", nargs="+", choices=list(CANDIDATES), help="train only these (others are read back)")
    ap.add_argument("--runs", default=str(REPO / "runs" / "train_speed"))
    ap.add_argument("--readme", action="store_true", help="replace the block between the markers in README.md")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "train_speed.json"))
    ap.add_argument("--render", action="store_true", help="only re-render the table of the saved --out JSON")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        quick(args, minutes=0.05, val_every=5, threads=1, only=[next(c for c in CANDIDATES if c != "before")], baseline_rev=None)
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    if args.render:
        return publish(report(res), REPO / "README.md", TAG, args.readme)
    res.update(date=time.strftime("%Y-%m-%d"), cores=os.cpu_count(), threads=args.threads, minutes=args.minutes,
               baseline_rev=args.baseline_rev or res.get("baseline_rev"))
    todo = args.only or [c for c in CANDIDATES if c != "before" or args.baseline_rev]
    for name in todo:
        run_dir = Path(args.runs) / name
        if run_dir.exists():
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        if name == "before":
            if not args.baseline_rev:
                raise SystemExit("--baseline-rev is needed for the 'before' run")
            with baseline_worktree(args.baseline_rev) as tree:
                res["runs"][name] = train_run(tree, run_dir.resolve(), args.minutes, args.val_every, args.threads, [])
        else:
            res["runs"][name] = train_run(REPO, run_dir.resolve(), args.minutes, args.val_every, args.threads,
                                          CANDIDATES[name], data="embedded" if args.quick else "photos")
        print(name, json.dumps(res["runs"][name][-1]), flush=True)
        out.write_text(json.dumps(res, indent=1) + "\n")
    return publish(report(res), REPO / "README.md", TAG, args.readme)


if __name__ == "__main__":
    sys.exit(main())
