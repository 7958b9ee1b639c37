"""End-to-end vs truncated unfolding (Sec. III-C) on the same budget: the comparison quoted in the README.

``end_to_end`` (the paper) back-propagates the loss of eq. (12) through all J unfolding steps in one
backward pass and takes one optimizer step per batch. ``truncated`` (the official code) detaches each
step's input, takes one backward pass and one optimizer step per unfolding step (J per batch), each
with the loss of that step alone. Both runs here use the same model, seed, data, batches and number
of batches; the table gives validation PSNR-Y against bicubic and the training wall time of each.

Usage (from the repository root)::

    python benchmarks/unfolding.py --steps 600 --threads 2 --out runs/unfolding
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, publish, quick

REPO = Path(__file__).resolve().parent.parent


TAG = "unfolding"


def render(res: dict) -> str:
    """The README block (the table and the sentence that reads it), from the saved JSON."""
    rows = res["rows"]
    lines = [f"`python benchmarks/unfolding.py --steps {res['steps']} --data {res['data']} --threads {res['threads']}`: "
             f"{res['model']} x2, cpu preset (batch 8, 32x32 LR patches), constant lr 4e-4 after 50 warm-up steps, "
             f"seed {res['seed']}; validation PSNR-Y on 128x128 centre crops, the 10 paper configs.", "",
             "| unfolding | " + " | ".join(f"step {s}" for s, _ in rows[0]["curve"]) + " | bicubic | training time |",
             "|---|" + "---|" * (len(rows[0]["curve"]) + 2)]
    for r in rows:
        lines.append(f"| {r['unfolding']} | " + " | ".join(f"{p:.2f}" for _, p in r["curve"]) +
                     f" | {r['bicubic']:.2f} | {r['train_s'] / 60:.0f} min |")
    by = {r["unfolding"]: r for r in rows}
    if set(by) == {"end_to_end", "truncated"}:
        e, t = by["end_to_end"], by["truncated"]
        ahead = sum(pt > pe for (_, pe), (_, pt) in zip(e["curve"], t["curve"]))
        lead, other = ("truncated", "end-to-end") if t["final"] > e["final"] else ("end-to-end", "truncated")
        gain = {k: by[k]["final"] - by[k]["bicubic"] for k in by}
        lines += ["", f"With one seed and {res['steps']} batches, {lead} unfolding ends ahead of {other} unfolding: "
                      f"{gain['truncated']:+.2f} dB over bicubic (truncated) against {gain['end_to_end']:+.2f} dB "
                      f"(end-to-end) at step {e['curve'][-1][0]}; truncated was ahead at {ahead} of "
                      f"{len(e['curve'])} validations."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--model", default="micro")
    ap.add_argument("--data", default="photos", help="embedded or photos (the shared photos)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "runs" / "unfolding"))
    ap.add_argument("--only", choices=("end_to_end", "truncated"),
                    help="train only this one (run both in parallel processes, then once more without "
                         "--only: finished runs are read back, not retrained)")
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "unfolding.json"), help="where the result is saved")
    ap.add_argument("--readme", action="store_true", help="replace the block between the markers in README.md")
    ap.add_argument("--render", action="store_true", help="only re-render the README block from the saved JSON")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        args.json = str(quick(args, steps=4, val_every=2, data="embedded", threads=1) / "unfolding.json")
    if args.render:
        return publish(render(json.loads((REPO / "benchmarks" / "unfolding.json").read_text())), REPO / "README.md",
                       TAG, True)

    from cisr_lib.train import TrainConfig, read_log, train

    out = Path(args.out)
    rows = []
    for unfolding in (args.only,) if args.only else ("end_to_end", "truncated"):
        cfg = TrainConfig(model=args.model, scale=2, preset="cpu", max_steps=args.steps, val_every=args.val_every,
                          patience=10**6, val_crop=128, unfolding=unfolding, data=args.data, threads=args.threads,
                          seed=args.seed, schedule="constant", warmup_steps=50)
        train(cfg, out / unfolding, progress=True)  # a finished run resumes at its last step: nothing to do
        steps, vals = read_log(out / unfolding)
        rows.append({"unfolding": unfolding, "curve": [(v["step"], v["val_psnr"]) for v in vals],
                     "bicubic": vals[-1]["val_bicubic"], "final": vals[-1]["val_psnr"],
                     "train_s": steps[-1]["elapsed"]})
        print(json.dumps(rows[-1]), flush=True)
    if args.only:
        return 0
    res = {"date": time.strftime("%Y-%m-%d"), "steps": args.steps, "data": args.data, "threads": args.threads,
           "model": args.model, "seed": args.seed, "rows": rows}
    Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return publish(render(res), REPO / "README.md", TAG, args.readme)

if __name__ == "__main__":
    sys.exit(main())
