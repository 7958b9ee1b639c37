"""Where the training of the shipped weights stands: validation gain against training minutes.

Each shipped weights file (``cisr_lib/weights/*.pt``) stores its lineage, every leg of training
behind it (run, steps, minutes; ``cisr_lib.ship.lineage``). This script lays the legs end to end,
reads each leg's validations from the run's log kept in ``cisr_lib/weights/logs/RUN.log.jsonl.gz``
(minutes from the log's own clock, validation time not counted) and reports, per file, the best
gain over bicubic and how much the last 30 minutes of training added: the number that says whether
more of the same training is worth it. Legs whose minutes were not recorded are counted in the
table and left out of the minutes; a leg whose log was not kept leaves a gap in the figure.

A run that was not shipped (a trial that did not beat the shipped file) is kept as a row too:
``--add-trial NAME RUN`` stores its lineage and best validation in ``cisr_lib/weights/logs/trials.json``
and its log and config beside the others, so the block can be measured again without the run folder.

Usage (from the repository root; ``--docs`` fills the ``weights-curves`` block of docs/training.md
and draws docs/figures/weights_curves.png)::

    python benchmarks/weights_curves.py --docs
    python benchmarks/weights_curves.py --render --docs     # the block again from the saved JSON
    python benchmarks/weights_curves.py --add-trial small_x3 runs/weights_v5/small_x3 --docs
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py

TAG = "weights-curves"
DOC = REPO / "docs" / "training.md"
FIGURE = REPO / "docs" / "figures" / "weights_curves.png"
WEIGHTS = REPO / "cisr_lib" / "weights"
TRIALS = "trials.json"  # in the logs folder: runs kept as rows without being shipped
RECENT = 30.0  # minutes: "what did the last half hour of training add"


def _log(logs: Path, run: str) -> list[dict] | None:
    for path in (logs / f"{run}.log.jsonl.gz", logs / f"{run}.log.jsonl"):
        if path.exists():
            if path.suffix == ".gz":
                with gzip.open(path, "rt") as f:
                    text = f.read()
            else:
                text = path.read_text()
            return [json.loads(line) for line in text.splitlines() if line.strip()]
    return None


def curve(lineage: list[dict], logs: Path) -> dict:
    """Validation points of a lineage laid end to end: [(minutes, step, gain)], and what is missing
    (a leg without its log adds a point (minutes, None, None): a gap in the figure)."""
    offset, points, missing_log, unrecorded = 0.0, [], [], 0
    for leg in lineage:
        if leg.get("minutes") is None:
            unrecorded += 1
            continue
        recs = _log(logs, leg["run"]) if leg.get("to_step") else None
        if recs is None and leg.get("to_step"):
            missing_log.append(leg["run"])
            points.append((round(offset, 2), None, None))  # a gap in the curve
        elif recs:
            lo, hi = leg["from_step"], leg["to_step"]
            clock = {r["step"]: r["elapsed"] for r in recs if "loss" in r}
            start = clock.get(lo, 0.0) if lo else 0.0
            for r in recs:
                if "val_psnr" in r and lo < r["step"] <= hi and r["step"] in clock:
                    points.append((round(offset + (clock[r["step"]] - start) / 60, 2), r["step"],
                                   round(r["val_psnr"] - r["val_bicubic"], 4)))
        offset += leg["minutes"]
    return {"points": points, "minutes": round(offset, 1), "legs": len(lineage), "unrecorded": unrecorded,
            "missing_log": missing_log}


def add_trial(name: str, run: Path, logs: Path) -> None:
    """Keep an unshipped run as a row: its lineage to its last step (``ship.lineage``) and best validation into
    ``logs/trials.json``, its log (gzipped) and config.json into ``logs``."""
    from cisr_lib.ship import lineage
    from cisr_lib.train import read_log

    if (logs.parent / f"{name}.pt").exists():
        raise SystemExit(f"error: {name}.pt is shipped; a trial is a run that was not (its curve is already drawn)")
    log_gz, log_text = logs / f"{run.name}.log.jsonl.gz", (run / "log.jsonl").read_text()
    if log_gz.exists():
        with gzip.open(log_gz, "rt") as f:
            if f.read() != log_text:
                raise SystemExit(f"error: {log_gz} holds another run's log; rename the run folder {run} first")
    train_log, vals = read_log(run)
    if not vals:
        raise SystemExit(f"error: {run} has no validation in its log.jsonl")
    best = max(vals, key=lambda v: v["val_psnr"])
    last = max(train_log[-1]["step"], vals[-1]["step"])  # the whole run: what the trial cost, not only its best
    cfg = json.loads((run / "config.json").read_text())
    trials_path = logs / TRIALS
    trials = json.loads(trials_path.read_text()) if trials_path.exists() else {}
    trials[name] = {"model": cfg["model"]["name"], "scale": cfg["model"]["scale"],
                    "gain": round(best["val_psnr"] - best["val_bicubic"], 4), "lineage": lineage(run, last)}
    with gzip.open(log_gz, "wt") as f:
        f.write(log_text)
    (logs / f"{run.name}.config.json").write_text((run / "config.json").read_text())
    trials_path.write_text(json.dumps(dict(sorted(trials.items())), indent=1) + "\n")


def measure(weights: Path, logs: Path) -> dict:
    from cisr_lib.checkpoint import load_checkpoint

    files = {}
    for path in sorted(weights.glob("*.pt")):
        st = load_checkpoint(path)
        meta, cfg = st.get("meta", {}), st.get("model_config", {})
        if not meta.get("lineage") or "psnr" not in (meta.get("val") or {}):
            continue
        files[path.name] = {"model": cfg.get("name"), "scale": cfg.get("scale"),
                            "gain": round(meta["val"]["psnr"] - meta["val"]["bicubic"], 4),
                            **curve(meta["lineage"], logs)}
    trials_path = logs / TRIALS
    for name, t in (json.loads(trials_path.read_text()) if trials_path.exists() else {}).items():
        if f"{name}.pt" in files:  # shipped since: drawn as the file
            continue
        files[f"{name} (trial, not shipped)"] = {"model": t["model"], "scale": t["scale"], "gain": t["gain"],
                                                 **curve(t["lineage"], logs)}
    return {"date": time.strftime("%Y-%m-%d"), "recent_minutes": RECENT, "files": files}


def recent_gain(points: list, minutes: float) -> float | None:
    """Best gain of the last ``minutes`` of the curve minus the best before them (None: too short)."""
    if not points:
        return None
    end = points[-1][0]
    before = [p[2] for p in points if p[0] <= end - minutes and p[2] is not None]
    after = [p[2] for p in points if p[0] > end - minutes and p[2] is not None]
    return round(max(after) - max(before), 3) + 0.0 if before and after else None  # + 0.0: no "-0.000"


def render(res: dict) -> str:
    rows = ["| file or trial | legs (minutes not recorded) | training minutes recorded | validations plotted | "
            f"best gain (dB) | added by the last {res['recent_minutes']:g} min (dB) |",
            "|---|---|---|---|---|---|"]
    for name, f in res["files"].items():
        recent = recent_gain(f["points"], res["recent_minutes"])
        rows.append(f"| `{name}` | {f['legs']} ({f['unrecorded']}) | {f['minutes']:g} | {sum(p[2] is not None for p in f['points'])} | "
                    f"{f['gain']:+.2f} | {'' if recent is None else f'{recent:+.3f}'} |")
    missing = sorted({r for f in res["files"].values() for r in f["missing_log"]})
    text = [f"`python benchmarks/weights_curves.py` on {res['date']}, from the lineages stored in the shipped files "
            "and the trials and logs in `cisr_lib/weights/logs/` (gain = mean PSNR-Y over bicubic on 192-pixel crops of "
            "photos 041-049, 10 configs, as the trainer validated it):", "", *rows]
    if missing:
        text += ["", f"Legs whose log was not kept (not plotted, their minutes counted): {', '.join(missing)}."]
    return "\n".join(text + ["", "![validation gain against training minutes](figures/weights_curves.png)"])


def figure(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted({f["scale"] for f in res["files"].values()})
    fig, axes = plt.subplots(1, len(scales), figsize=(4.2 * len(scales), 3.6), squeeze=False)
    for ax, s in zip(axes[0], scales):
        for name, f in reversed(res["files"].items()):  # micro last: on top of the lineage it shares with small
            if f["scale"] == s and f["points"]:
                gains = [float("nan") if p[2] is None else p[2] for p in f["points"]]
                ax.plot([p[0] for p in f["points"]], gains, marker="o", ms=2.5, label=name)
        ax.set(title=f"x{s}", xlabel="training minutes (recorded legs)", ylabel="validation gain (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(WEIGHTS), help="folder of weights files with lineages")
    ap.add_argument("--logs", default=str(WEIGHTS / "logs"), help="folder of kept run logs (RUN.log.jsonl[.gz])")
    ap.add_argument("--render", action="store_true", help="only the docs block, from the saved --out JSON")
    ap.add_argument("--add-trial", nargs=2, metavar=("NAME", "RUN"), help="first keep an unshipped run as a row")
    ap.add_argument("--docs", action="store_true")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "weights_curves.json"))
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    figure_path = FIGURE
    if args.quick:
        figure_path = quick(args) / FIGURE.name
    if args.render:
        return publish(render(json.loads(Path(args.out).read_text())), DOC, TAG, args.docs)
    if args.add_trial:
        add_trial(args.add_trial[0], Path(args.add_trial[1]), Path(args.logs))
    res = measure(Path(args.weights), Path(args.logs))
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    if args.docs or args.quick:
        figure(res, figure_path)
    return publish(render(res), DOC, TAG, args.docs)


if __name__ == "__main__":
    sys.exit(main())
