"""Why PSI trails the cascade at the study's budget: ARM's and REM's extra inputs, one at a time.

The ablation study (``make ablations``, README) finds PSI about 0.1 dB *below* the cascade of
Fig. 1(b) with the micro model at 1,200 steps, and a single unfolding step (J = 1) does not close
the gap. At J = 1 the two differ in exactly two inputs:

* ARM's auxiliary input, the HR estimate x_0 = bicubic(z): its registered copy g, the guided
  non-local image u = NL(z; g) and the other s^2 - 1 copies (the cascade's ARM sees z alone);
* REM's compressed input z, with u = NL(z; y) built from it (the cascade's REM sees y alone, and
  its u is the self-similarity NL(y; y)).

This script trains the 2 x 2 design at the study's budget (``cisr_lib.ablations.Budget``: micro x2,
JPEG 10, 1,200 steps, one thread per run), J = 1 for all four, with the same seeds:

| ARM sees | REM sees | model |
|---|---|---|
| z | y | cascade |
| z | y, z | PSI without ARM's auxiliary input (Table III "w/o I-AI") |
| z, x_0 | y | PSI without REM's compressed input ("w/o II-CI") |
| z, x_0 | y, z | PSI |

and reports each cell's mean PSNR-Y (128-pixel crops of photos 041-049, as the study) with the
effect of each input averaged over the other.

Usage (from the repository root; a finished run is read back, not retrained)::

    python benchmarks/psi_inputs.py --seeds 0 1 --readme
    python benchmarks/psi_inputs.py --render --readme      # the README block from the saved JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py

TAG = "psi-inputs"
CELLS = {  # name: (variant, ablation, ARM's inputs, REM's inputs)
    "cascade": ("cascade", (), "z", "y"),
    "psi_no_arm_aux": ("psi", ("no_arm_aux",), "z", "y, z"),
    "psi_no_rem_input": ("psi", ("no_rem_input",), "z, x_0", "y"),
    "psi": ("psi", (), "z, x_0", "y, z"),
}
J1 = {"steps": 1, "rho": (1.0,)}


def measure(seeds: list[int], out: Path, budget) -> dict:
    from cisr_lib import ablations

    rows = {}
    for name, (variant, ablation, arm_in, rem_in) in CELLS.items():
        scores = []
        for seed in seeds:
            spec = {"name": f"{name}_s{seed}", "group": "psi_inputs", "variant": variant, "ablation": ablation,
                    "skip": "adaptive", "seed": seed}
            rec = ablations.run_one(spec, budget, out)
            scores.append(round(rec["psnr"], 4))
            print(f"{spec['name']}: {rec['psnr']:.3f} dB ({rec['train_seconds'] / 60:.1f} min)", flush=True)
        rows[name] = {"arm": arm_in, "rem": rem_in, "per_seed": scores}
    bicubic = ablations.bicubic_record(budget)["psnr"]
    data, eval_data = ablations.data_names(budget)  # the shared photos, or the embedded ones where absent
    return {"date": time.strftime("%Y-%m-%d"), "seeds": seeds, "bicubic": round(bicubic, 4),
            "data": data, "eval_data": eval_data,
            "budget": {k: v for k, v in dataclasses.asdict(budget).items() if k != "overrides"},
            "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in budget.overrides.items()},
            "rows": rows}


def render(res: dict) -> str:
    b = res["budget"]
    mean = {k: statistics.fmean(r["per_seed"]) for k, r in res["rows"].items()}
    lines = [f"`python benchmarks/psi_inputs.py --seeds {' '.join(map(str, res['seeds']))}` on {res['date']}: "
             f"{b['model']} x{b['scale']}, {'/'.join(c + str(q) for c, q in b['configs'])}, {b['steps']} steps of batch "
             f"{b['batch_size']} ({b['lr_patch']}x{b['lr_patch']} LR patches) on `{res['data']}`, lr {b['lr']:g} "
             f"{b['schedule']}, J = 1 for every model; PSNR-Y on {b['eval_side']}x{b['eval_side']} HR centre crops of "
             f"`{res['eval_data']}` (bicubic {res['bicubic']:.3f} dB):", "",
             "| ARM sees | REM sees | model | mean PSNR-Y | per seed |", "|---|---|---|---|---|"]
    for name, r in res["rows"].items():
        lines.append(f"| {r['arm']} | {r['rem']} | {name} | {mean[name]:.3f} | "
                     f"{', '.join(f'{p:.3f}' for p in r['per_seed'])} |")
    if set(mean) == set(CELLS):
        aux = (mean["psi_no_rem_input"] - mean["cascade"] + mean["psi"] - mean["psi_no_arm_aux"]) / 2
        rem_z = (mean["psi_no_arm_aux"] - mean["cascade"] + mean["psi"] - mean["psi_no_rem_input"]) / 2
        spread = max(max(r["per_seed"]) - min(r["per_seed"]) for r in res["rows"].values())
        lines += ["", f"Added to the cascade alone, ARM's HR estimate changes PSNR-Y by "
                      f"{mean['psi_no_rem_input'] - mean['cascade']:+.3f} dB and REM's z by "
                      f"{mean['psi_no_arm_aux'] - mean['cascade']:+.3f} dB; added on top of the other, by "
                      f"{mean['psi'] - mean['psi_no_arm_aux']:+.3f} and {mean['psi'] - mean['psi_no_rem_input']:+.3f} dB "
                      f"(averaged: {aux:+.3f} and {rem_z:+.3f} dB). PSI minus the cascade is "
                      f"{mean['psi'] - mean['cascade']:+.3f} dB. The largest seed range of a cell is {spread:.3f} dB."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default=str(REPO / "runs" / "psi_inputs"), help="run folders (resumed)")
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "psi_inputs.json"))
    ap.add_argument("--readme", action="store_true", help="replace the block between the markers in README.md")
    ap.add_argument("--render", action="store_true", help="only the README block, from the saved JSON")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    from cisr_lib import ablations

    budget = ablations.Budget(overrides=dict(J1))
    if args.quick:
        quick(args, seeds=[0])
        small = dict(n_feats=8, n_groups=1, n_blocks=1, **J1)
        budget = ablations.Budget(overrides=small, steps=2, batch_size=2, lr_patch=16, data="embedded", eval_side=48,
                                  device="cpu")
    if args.render:
        return publish(render(json.loads(Path(args.json).read_text())), REPO / "README.md", TAG, args.readme)
    res = measure(args.seeds, Path(args.out), budget)
    Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return publish(render(res), REPO / "README.md", TAG, args.readme)


if __name__ == "__main__":
    sys.exit(main())
