"""Publish a training run as shipped weights: an fp16 weights file and its model card.

``make weights`` trains ``micro`` for x2 (from scratch), then x3 and x4 (initialised from the x2
weights: only the ARM head and the REM up-sampler differ), on the shared photos, and calls::

    python -m cisr_lib.ship runs/weights/micro_x2 micro_x2 --hardware "2 CPU cores" [--overwrite]

which writes ``cisr_lib/weights/micro_x2.pt`` (the run's ``best.pt``, fp16), updates
``cisr_lib/weights/SHA256SUMS`` and writes ``cisr_lib/weights/micro_x2.md``: data, configuration, steps, wall time, hardware, and validation
PSNR-Y per configuration against bicubic, all read from the run's ``config.json`` and ``log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from cisr_lib.files import fill_block
from cisr_lib.messages import command
from cisr_lib.paths import REPO_ROOT
from cisr_lib.pretrained import WEIGHTS_DIR, export_weights, write_sums


TARGET_GAIN = {2: 1.0, 3: 0.7, 4: 0.5}  # mean PSNR-Y gain over bicubic the shipped CPU weights aim at
CPU_MODELS = ("micro", "small")  # the configurations trained on the CPU, which the targets apply to


def lineage(run: str | os.PathLike, upto: int | None = None, _seen: frozenset = frozenset()) -> list[dict]:
    """Every leg of training behind a run's ``best.pt``, oldest first.

    A run started with ``--init`` continues the lineage of what it started from
    (:func:`source_lineage`). Each leg: run, first and last step, training minutes, device,
    precision, threads and, where logged, the command.

    Args:
        run: the run folder (``config.json``, ``log.jsonl``).
        upto: the last step that counts (default: the step of the run's best validation).
    """
    from cisr_lib.train import read_legs, read_log

    run = Path(run)
    if run.resolve() in _seen:
        raise ValueError(f"{run} starts (through --init) from itself: its lineage is a loop")
    _seen = _seen | {run.resolve()}
    tc = json.loads((run / "config.json").read_text())["train"]
    train_log, vals = read_log(run)
    if upto is None:
        upto = max(vals, key=lambda v: v["val_psnr"])["step"] if vals else (train_log[-1]["step"] if train_log else 0)
    before = source_lineage(tc["init"], run.name, _seen) if tc.get("init") else []
    elapsed = {r["step"]: r["elapsed"] for r in train_log}
    legs = [leg for leg in read_legs(run) if leg["step"] < upto] or [{"step": 0}]
    out = []
    for k, leg in enumerate(legs):
        stop = min(legs[k + 1]["step"], upto) if k + 1 < len(legs) else upto
        minutes = (elapsed.get(stop, 0.0) - elapsed.get(leg["step"], 0.0)) / 60 if stop in elapsed else None
        out.append({"run": run.name, "from_step": leg["step"], "to_step": stop,
                    "minutes": None if minutes is None else round(minutes, 1), "device": leg.get("device"),
                    "precision": leg.get("precision"), "threads": leg.get("threads"), "command": leg.get("command")})
    return before + out


def source_lineage(path: str | os.PathLike, shipped_from: str | None = None,
                   _seen: frozenset = frozenset()) -> list[dict]:
    """Every leg of training behind a file a run can start from (``--init``), oldest first.

    Args:
        path: another run's ``best.pt`` / ``last.pt`` (that run's :func:`lineage` up to the
            checkpoint's step), or a weights file (its stored ``meta["lineage"]``; a file shipped
            before lineages were stored gives one entry from its ``meta``).
        shipped_from: the run whose lineage is being written. When ``path`` was since overwritten by
            shipping that very run (``--init`` of the shipped name, shipped again), its stored lineage
            already ends with that run's legs; they are dropped, since they follow from the run's log.
    """
    from cisr_lib.checkpoint import CheckpointError, load_checkpoint

    path = Path(path)
    if path.name in ("best.pt", "last.pt") and (path.parent / "config.json").exists():
        try:
            ck = load_checkpoint(path)
            step = ck["step"] if "step" in ck else ck["state"]["step"]
        except (CheckpointError, KeyError):
            step = None
        return lineage(path.parent, step, _seen)
    if not path.exists():
        return [{"run": path.name, "note": "initial weights not found when this card was written"}]
    meta = load_checkpoint(path).get("meta", {})
    legs = _stored_legs(meta, path)
    if shipped_from is not None and meta.get("run") == shipped_from and meta.get("lineage"):
        while legs and legs[-1].get("run") == shipped_from:
            legs.pop()
    return legs


def _stored_legs(meta: dict, path: Path) -> list[dict]:
    """The legs a weights file's ``meta`` records (one from its ``meta`` for a file shipped before lineages)."""
    return list(meta.get("lineage") or [{"run": meta.get("run", path.stem), "from_step": 0,
                                         "to_step": meta.get("step"), "minutes": None,
                                         "device": meta.get("hardware"), "precision": None, "threads": None,
                                         "command": None, "weights": path.name}])


def _lineage_md(legs: list[dict]) -> list[str]:
    def cell(v):
        return "" if v is None else str(v)

    lines = ["| leg | run | steps | minutes | device | arithmetic | threads | command |", "|---|---|---|---|---|---|---|---|"]
    for k, leg in enumerate(legs, 1):
        steps = f"{cell(leg.get('from_step'))}-{cell(leg.get('to_step'))}" if "to_step" in leg else ""
        command = f"`{leg['command']}`" if leg.get("command") else leg.get("note", "(not logged)")
        lines.append(f"| {k} | {cell(leg.get('run'))} | {steps} | {cell(leg.get('minutes'))} | {cell(leg.get('device'))} | "
                     f"{cell(leg.get('precision'))} | {cell(leg.get('threads'))} | {command} |")
    return lines


def model_card(run: str | os.PathLike, name: str, hardware: str, command: str | None = None,
               note: str | None = None) -> str:
    """The markdown model card of a run's best checkpoint (see the module docstring)."""
    from cisr_lib.checkpoint import load_checkpoint

    run = Path(run)
    cfg = json.loads((run / "config.json").read_text())
    tc, mc = cfg["train"], cfg["model"]
    from cisr_lib.train import read_legs, read_log

    vals = read_log(run)[1]
    precisions = ", ".join(dict.fromkeys(f"{leg['precision']} on {leg['device']}" for leg in read_legs(run)))
    if not vals:
        raise ValueError(f"{run} has no validation records; nothing to describe")
    best = max(vals, key=lambda v: v["val_psnr"])
    last_step = max(v["step"] for v in vals)
    ck = load_checkpoint(run / "best.pt")
    n_params = sum(v.numel() for v in ck["model"].values() if v.is_floating_point())
    data = {"photos": "shared photos 001-040 (about 1 MP each); validation: photos 041-049",
            "embedded": "the scikit-image photos (chelsea held out for validation)"}.get(tc["data"], tc["data"])
    gain = best["val_psnr"] - best["val_bicubic"]
    lines = [f"# Model card: `{name}.pt`", "", "| | |", "|---|---|",
             f"| model | CISR-PSI `{mc['name']}`: {mc['n_groups']} residual groups x {mc['n_blocks']} RCAB x "
             f"{mc['n_feats']} features per module, J = {mc['steps']}, rho = {tuple(mc['rho'])}, gamma = {mc['gamma']}; "
             f"{n_params:,} parameters |",
             f"| scale | x{mc['scale']} |",
             "| stored as | fp16 weights-only file, loaded as fp32 by `cisr_lib.pretrained.load_model` |",
             f"| training data | {data} |",
             f"| validation | {tc['val_crop']}x{tc['val_crop']} HR centre crops, the {len(tc['configs'])} paper configs |",
             f"| degradations | MATLAB-bicubic down x{mc['scale']}, then " +
             ", ".join(f"{c}{q}" for c, q in tc["configs"]) + ", drawn uniformly per patch |",
             f"| optimisation | Adam, lr {tc['lr']:g} ({tc['schedule']}, {tc['warmup_steps']} warm-up steps, over "
             f"{tc['max_steps']} steps), batch {tc['batch_size']} LR patches of {tc['lr_patch']}x{tc['lr_patch']}, "
             f"rotation/flip, loss eq. (12){'' if tc.get('loss', 'l1') == 'l1' else ' with the ' + tc['loss'] + ' norm'}, "
             f"{tc['unfolding']} unfolding |",
             f"| arithmetic | {precisions or 'fp32 (before precision was logged)'} |",
             f"| initialised from | {tc.get('init') or 'random (seed %d)' % tc['seed']} |",
             f"| steps | best at step {best['step']:,} of {last_step:,} validated |",
             f"| wall time | {best['elapsed'] / 60:.0f} min of training to the best step ({hardware}) |",
             f"| command | `{command}` |" if command else "| command | see `make weights` |",
             "", f"Validation PSNR-Y (dB, crop {mc['scale']}) at step {best['step']:,}, measured by the trainer; "
             "bicubic is MATLAB-bicubic up-scaling of the same compressed inputs:", "",
             "| config | bicubic | model | gain |", "|---|---|---|---|"]
    # bicubic per config: in the log since this project logged it, else saved with the best checkpoint
    bic = best.get("bicubic_per_config") or (ck.get("val") or {}).get("bicubic_per_config", {})
    for k, v in best["per_config"].items():
        b = bic.get(k)
        lines.append(f"| {k} | {b:.2f} | {v:.2f} | {v - b:+.2f} |" if b is not None else f"| {k} | | {v:.2f} | |")
    lines.append(f"| **mean** | **{best['val_bicubic']:.2f}** | **{best['val_psnr']:.2f}** | **{gain:+.2f}** |")
    target = TARGET_GAIN.get(mc["scale"])
    below = [k for k, v in best["per_config"].items() if k in bic and v < bic[k]]
    if target is not None:
        met = gain >= target and not below
        lines += ["", f"Project target for x{mc['scale']} (mean gain >= {target:+.1f} dB, no config below bicubic): "
                  + ("**met**." if met else f"**not met**: the mean gain is {gain:+.2f} dB, {target - gain:.2f} dB short"
                     + (f"; below bicubic: {', '.join(below)}" if below else "; no config is below bicubic") + ".")]
    curve = ", ".join(f"{v['val_psnr']:.2f}" for v in vals)
    lines += ["", f"Validation mean over the run (every {tc['val_every']} steps): {curve} dB."]
    legs = lineage(run, best["step"])
    total = sum(leg["minutes"] for leg in legs if leg.get("minutes") is not None)
    lines += ["", f"Lineage: every leg of training behind these weights, oldest first ({total:.0f} minutes "
              "of training where recorded; each leg continues from the one before):", "", *_lineage_md(legs)]
    lines += ["", note] if note else []
    lines.append("")
    return "\n".join(lines)


def lineage_totals(legs: list[dict]) -> tuple[int, str]:
    """Training steps summed over a lineage's legs, and its minutes as text ("124", "198 + unrecorded" where
    some leg did not record them, "not recorded" where none did)."""
    steps = sum((g.get("to_step") or 0) - (g.get("from_step") or 0) for g in legs)
    minutes = [g["minutes"] for g in legs if g.get("minutes") is not None]
    text = f"{sum(minutes):.0f}" if minutes and len(minutes) == len(legs) else (
        f"{sum(minutes):.0f} + unrecorded" if minutes else "not recorded")
    return steps, text


def training_summary(path: str | os.PathLike) -> str:
    """One line on how a weights file was trained and how it validates, read from the file itself.

    For the notebooks' prose ("the shipped tiny_x2 weights were trained briefly"), so that the steps, the
    device and the gain over bicubic are printed by a cell rather than typed: steps and minutes summed
    over the lineage (:func:`lineage_totals`), its devices, and the stored validation.
    """
    from cisr_lib.checkpoint import load_checkpoint

    meta = load_checkpoint(path).get("meta", {})  # read once: the lineage is the one it stores
    tc = meta.get("train_config", {})
    legs = _stored_legs(meta, Path(path))
    steps, minutes = lineage_totals(legs)
    devices = list(dict.fromkeys(str(g["device"]) for g in legs if g.get("device"))) or ["an unrecorded device"]
    when = f"{minutes} min" if minutes != "not recorded" else "minutes not recorded" + (  # then say the budget
        f"; its last leg's time budget was {tc['max_minutes']:g} min" if tc.get("max_minutes") else "")
    text = (f"{Path(path).name}: {tc.get('model', '?')} x{tc.get('scale', '?')}, {steps:,} training steps in "
            f"{len(legs)} leg(s) on {'; '.join(devices)} ({when})")
    val = meta.get("val") or {}
    if "psnr" in val and "bicubic" in val:
        n = len(val.get("per_config", {}))
        configs = f" ({n} config{'s' if n != 1 else ''})" if n else ""
        text += (f"; validation{configs}: {val['psnr']:.2f} dB against bicubic {val['bicubic']:.2f} dB "
                 f"({val['psnr'] - val['bicubic']:+.2f} dB)")
    return text


def weights_table(folder: str | os.PathLike = WEIGHTS_DIR) -> str:
    """The README's table of shipped weights, read from each file's stored metadata (validation
    at the best step, steps, lineage minutes, hardware): ``python -m cisr_lib.ship --table --readme``."""
    from cisr_lib.checkpoint import load_checkpoint

    rows = ["| file | model | validation: bicubic | model | gain | target | steps (this run) | training minutes "
            "(whole lineage) | trained on |", "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(Path(folder).glob("*.pt")):
        st = load_checkpoint(path)
        meta, cfg = st.get("meta", {}), st.get("model_config", {})
        val = meta.get("val") or {}
        if "psnr" not in val:
            continue
        gain = val["psnr"] - val["bicubic"]
        bic = val.get("bicubic_per_config", {})
        below = [k for k, v in val.get("per_config", {}).items() if k in bic and v < bic[k]]
        target = TARGET_GAIN.get(cfg.get("scale")) if cfg.get("name") in CPU_MODELS else None
        verdict = "" if target is None else f"{target:+.1f}: " + ("met" if gain >= target and not below else "not met")
        _, total = lineage_totals(meta.get("lineage") or [])
        rows.append(f"| `{path.name}` ({path.stat().st_size / 2**20:.1f} MB) | {cfg.get('name')} x{cfg.get('scale')} | "
                    f"{val['bicubic']:.2f} | {val['psnr']:.2f} | {gain:+.2f} | {verdict} | {meta.get('step', 0):,} | "
                    f"{total} | {meta.get('hardware', '')} |")
    return "\n".join(rows)


@command("python -m cisr_lib.ship")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cisr_lib.ship", description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="training run folder (holds best.pt, config.json, log.jsonl)")
    ap.add_argument("name", nargs="?", help="weights name, e.g. micro_x2 (written to cisr_lib/weights/NAME.pt and .md)")
    ap.add_argument("--table", action="store_true", help="print the table of the shipped weights instead")
    ap.add_argument("--readme", action="store_true", help="with --table: also fill README.md's weights block")
    ap.add_argument("--hardware", default=f"{os.cpu_count()} CPU cores, {platform.machine()}")
    ap.add_argument("--command", help="the training command, for the card")
    ap.add_argument("--note", help="a paragraph for the card (how the run ended, what more training would need)")
    ap.add_argument("--dest", default=str(WEIGHTS_DIR))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    if args.table:
        md = weights_table(args.dest)
        print(md)
        if args.readme:
            fill_block(REPO_ROOT / "README.md", "weights", md)
        return 0
    if not args.run or not args.name:
        ap.error("RUN and NAME are required (or --table)")
    run, dest = Path(args.run), Path(args.dest)
    if not (run / "best.pt").exists():
        raise FileNotFoundError(f"{run / 'best.pt'} does not exist: train first")
    card = model_card(run, args.name, args.hardware, args.command, args.note)
    dest.mkdir(parents=True, exist_ok=True)
    export_weights(run / "best.pt", dest / f"{args.name}.pt", half=True, overwrite=args.overwrite,
                   meta={"hardware": args.hardware, "run": run.name, "lineage": lineage(run)})
    (dest / f"{args.name}.md").write_text(card)
    write_sums(dest)  # the published SHA-256 of every weights file there, checked at load time
    print(f"wrote {dest / args.name}.pt and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
