"""The ablation and baseline study (Table III and Fig. 1 frameworks) at one small, stated budget.

``make ablations`` (``python -m cisr_lib.ablations``) trains, with the same steps, data, patches and
optimiser:

* the five-framework comparison: bicubic (no training), plain SR, cascade (Fig. 1(b)), parallel
  (Fig. 1(a)) and PSI, each trained with seeds 0, 1 and 2;
* every Table III variant of PSI with seed 0: the four stream cuts (w/o I-CI, I-AI, II-CI, II-AI),
  no non-local operator, the traditional non-local operator (h = 30), and the four single long
  skips (none, z, g, u); "Ours" is PSI seed 0 (adaptive skip).

The paper's ablation setting is used: x2, JPEG with QF = 10 only (Sec. IV-C), micro model. Every run
is exported as an fp16 weights file and evaluated on the validation photos (centre crops); the
results go to ``results.json``: per run the PSNR-Y / SSIM-Y per image, the per-step PSNR and the
ARM's artifact-reduction PSNR, and the summary (mean and spread over seeds). Seed-0 weights and
``results.json`` are copied to ``cisr_lib/weights/ablations/``, which notebooks 10 and 11 read.

A finished run is not trained again: re-running the command resumes where it stopped. A study too long
for one sitting can be exported with the runs it has (``--export --export-dir DIR``: refreshed after every
finished run), committed, and continued on another machine with ``--resume-from DIR``.

``--group frameworks`` (or ``table_iii``) trains one kind of run alone. ``make ablations-longer`` runs the
whole study at :data:`LONGER_STEPS` (four times the shipped steps) over several sittings and exports the
results only (``--results-only``) to the folder of :data:`LONGER`, which the README's "ablations-longer"
block sets beside the shipped study; with ``--merge`` the export keeps the runs other processes exported
there, so processes (or machines) given different ``--only`` runs share it.

Derived in notebooks/11_ablations.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from cisr_lib.messages import command
from cisr_lib import paper
from cisr_lib.ablation_report import (  # noqa: F401 (public API)
    compare_budgets, differences, report, resolved_both_ways, seed_pairing, table_iii_noise, table_iii_vs_mean)
from cisr_lib.files import atomic_write, fill_blocks
from cisr_lib.pretrained import WEIGHTS_DIR, export_weights

FORMAT = "cisr-psi-ablations/1"
EXPORT_DIR = WEIGHTS_DIR / "ablations"
SEEDS = (0, 1, 2)
GROUPS = ("frameworks", "table_iii")  # the two kinds of run (runs()' "group")
FRAMEWORKS = paper.FRAMEWORKS  # plus bicubic, which is not trained

TABLE_III = paper.TABLE_III  # (run name, label, ablation, skip, paper PSNR at x2 JPEG10, tiny model)
PAPER_OURS = paper.TABLE_III_OURS  # Table III's "Ours": the tiny model of Table II, x2 JPEG q10


@dataclasses.dataclass
class Budget:
    """What every run of the study shares (stated in results.json and the README)."""

    model: str = "micro"
    overrides: dict = dataclasses.field(default_factory=dict)  # model config overrides (tests: a smaller net)
    scale: int = 2
    configs: tuple = (("jpeg", 10),)
    steps: int = 1200  # the shipped study; the earlier one (weights/ablations_300) used 300
    batch_size: int = 8
    lr_patch: int = 24
    lr: float = 4e-4
    warmup_steps: int = 20
    schedule: str = "cosine"
    data: str = "photos"  # falls back to "embedded" where the shared photos are absent
    eval_side: int = 128  # HR centre crop of each validation image
    threads: int = 1
    device: str = "auto"  # training and evaluation device ("auto": CUDA, then MPS, then CPU); recorded


def runs() -> list[dict[str, Any]]:
    """Every trained run: name, group, variant, ablation, skip, seed."""
    out = [dict(name=f"{v}_s{s}", group="frameworks", variant=v, ablation=(), skip="adaptive", seed=s)
           for v in FRAMEWORKS for s in SEEDS]
    out += [dict(name=n, group="table_iii", variant="psi", ablation=a, skip=k, seed=0, label=lab, paper=p)
            for n, lab, a, k, p in TABLE_III]
    return out


def data_names(budget: Budget) -> tuple[str, str]:
    """(training data, evaluation data) names, falling back to the embedded photos."""
    from cisr_lib.photos import shared_photos

    data = "embedded" if budget.data == "photos" and shared_photos() is None else budget.data
    if data not in ("photos", "embedded"):
        raise ValueError(f"data must be photos or embedded, got {budget.data!r}")
    return data, f"{data}-val"  # the held-out images: photos 041-049, or chelsea


def _summarise(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation and range of one number over seeds."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values), "values": values}


def run_one(spec: dict, budget: Budget, out: Path, progress: bool = False) -> dict[str, Any]:
    """Train (or resume) one run, export its weights and evaluate them; returns its record."""
    from cisr_lib.train import TrainConfig, train

    rdir = out / spec["name"]
    done = rdir / "eval.json"
    if done.exists():
        return json.loads(done.read_text())
    cfg = TrainConfig(model=budget.model, overrides=dict(budget.overrides), scale=budget.scale,
                      variant=spec["variant"], ablation=spec["ablation"], skip=spec["skip"], preset="cpu",
                      batch_size=budget.batch_size, lr_patch=budget.lr_patch, lr=budget.lr, schedule=budget.schedule, warmup_steps=budget.warmup_steps,
                      max_steps=budget.steps, val_every=budget.steps, patience=1, val_crop=budget.eval_side,
                      data=data_names(budget)[0], configs=budget.configs, threads=budget.threads,
                      seed=spec["seed"],
                      ckpt_every=max(50, budget.steps // 4), device=budget.device)
    summary = train(cfg, rdir, resume=True, progress=progress)
    weights = export_weights(rdir / "last.pt", rdir / "weights.pt", half=True, overwrite=True,
                             meta={"study": FORMAT, "run": spec["name"]})
    from cisr_lib.precision import describe
    from cisr_lib.device import select_device
    from cisr_lib.train import read_legs

    rec = {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()},
           "train_seconds": round(summary["elapsed_s"], 1), "steps": summary["steps"],
           "precision": sorted({leg["precision"] for leg in read_legs(rdir)}),  # training; eval below
           "eval_precision": describe(None, select_device(budget.device)),
           "parameters": sum(p.numel() for p in torch.load(weights, weights_only=True)["state_dict"].values()),
           **_scores(weights, budget)}
    atomic_write(done, json.dumps(rec, indent=1))
    return rec


def _scores(method, budget: Budget) -> dict[str, Any]:
    """Mean PSNR-Y / SSIM-Y of a method on the held-out images, per image, per step and of the ARM."""
    from cisr_lib.evaluate import data_source, evaluate

    recs = evaluate(method, data_source(data_names(budget)[1]), scales=[budget.scale],
                    configs=[f"{c}{q}" for c, q in budget.configs], max_side=budget.eval_side,
                    device="cpu" if method == "bicubic" else budget.device)["records"]
    out = {"psnr": statistics.fmean(r["psnr"] for r in recs), "ssim": statistics.fmean(r["ssim"] for r in recs),
           "per_image": {r["image"]: round(r["psnr"], 4) for r in recs}}
    if "steps_psnr" in recs[0]:
        out["steps_psnr"] = [statistics.fmean(r["steps_psnr"][j] for r in recs) for j in range(len(recs[0]["steps_psnr"]))]
    if "ar" in recs[0]:
        out["ar_psnr"] = statistics.fmean(r["ar"]["psnr"] for r in recs)
        out["z_psnr"] = statistics.fmean(r["ar"]["z_psnr"] for r in recs)
    return out


def bicubic_record(budget: Budget) -> dict[str, Any]:
    return {"name": "bicubic", "group": "frameworks", "variant": "bicubic", "seed": None, **_scores("bicubic", budget)}


def summary(records: list[dict]) -> dict[str, Any]:
    """Frameworks: mean and spread over seeds; Table III rows: their single run minus PSI seed 0."""
    by = {r["name"]: r for r in records}
    fw = {v: _summarise([by[f"{v}_s{s}"]["psnr"] for s in SEEDS if f"{v}_s{s}" in by])
          for v in FRAMEWORKS if any(f"{v}_s{s}" in by for s in SEEDS)}
    if "bicubic" in by:
        fw["bicubic"] = _summarise([by["bicubic"]["psnr"]])
    ours = by.get("psi_s0")
    t3 = [{"name": n, "label": lab, "paper": p, "psnr": by[n]["psnr"],
           "minus_ours": by[n]["psnr"] - ours["psnr"] if ours else None}
          for n, lab, _, _, p in TABLE_III if n in by]
    noise = fw["psi"]["max"] - fw["psi"]["min"] if "psi" in fw and fw["psi"]["n"] > 1 else None
    return {"frameworks": fw, "table_iii": t3, "psi_seed_range": noise}


def study(budget: Budget, out: Path, only: list[str] | None = None, progress: bool = True,
          group: str | None = None, after_each=None) -> dict[str, Any]:
    """Train and evaluate every run (or those named in ``only`` and of ``group``, one of :data:`GROUPS`);
    write ``out/results.json`` after each run (a study cut short keeps the runs it finished; once if there
    is none), each time followed by ``after_each()`` (e.g. a refresh of its export)."""
    from tqdm.auto import tqdm

    if group not in (None, *GROUPS):
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, got {group!r}")
    specs = [s for s in runs() if (not only or s["name"] in only) and (group is None or s["group"] == group)]
    unknown = set(only or ()) - {s["name"] for s in runs()}
    if unknown:
        raise ValueError(f"unknown run(s) {sorted(unknown)}; see cisr_lib.ablations.runs()")
    out.mkdir(parents=True, exist_ok=True)
    # finished runs first, so that every results.json written below holds all of them; written in runs() order
    specs.sort(key=lambda spec: not (out / spec["name"] / "eval.json").exists())
    records = [bicubic_record(budget)]
    t0 = time.perf_counter()
    data, eval_name = data_names(budget)
    from cisr_lib.device import select_device

    dev = select_device(budget.device)

    def write() -> dict[str, Any]:
        result = {"format": FORMAT, "budget": {**dataclasses.asdict(budget), "data": data, "eval_data": eval_name},
                  "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type,
                  "hardware": f"{torch.get_num_threads()} torch thread(s), {platform.processor() or platform.machine()}",
                  "torch": torch.__version__, "wall_seconds_this_call": round(time.perf_counter() - t0, 1),
                  "records": _in_runs_order(records),
                  "summary": summary(records)}
        atomic_write(out / "results.json", json.dumps(result, indent=1))
        if after_each is not None:
            after_each()
        return result

    result = None
    for spec in tqdm(specs, desc="ablations", disable=not progress):
        records.append(run_one(spec, budget, out))
        result = write()
    return result if result is not None else write()


def export(out: Path, dest: Path = EXPORT_DIR, weights: bool = True, merge: bool = False) -> list[Path]:
    """Copy results.json and (unless ``weights`` is False) the seed-0 weights of ``out`` to ``dest``
    (what the notebooks read).

    ``merge=True`` keeps the runs already exported to ``dest`` that ``out`` does not hold (same budget
    only, under a lock): two processes, or machines, that train different runs (``--only``) of one study
    into their own ``out`` folders then build one export between them.
    """
    dest.mkdir(parents=True, exist_ok=True)
    written = [dest / "results.json"]
    if merge:
        _merge_results(out / "results.json", written[0])
    else:
        shutil.copyfile(out / "results.json", written[0])
    for spec in runs() if weights else ():
        src = out / spec["name"] / "weights.pt"
        if spec["seed"] == 0 and src.exists():
            name = spec["name"].removesuffix("_s0")
            shutil.copyfile(src, dest / f"{name}.pt")
            written.append(dest / f"{name}.pt")
    return written


def _in_runs_order(records: list[dict]) -> list[dict]:
    """bicubic first, then the trained runs in the order of :func:`runs`."""
    rank = {"bicubic": -1, **{spec["name"]: i for i, spec in enumerate(runs())}}
    return sorted(records, key=lambda r: rank[r["name"]])


def _budget_diff(mine: dict, theirs: dict) -> list[str]:
    """The budget fields of ``mine`` whose value ``theirs`` does not share."""
    return sorted(k for k in mine if json.dumps(mine[k]) != json.dumps(theirs.get(k)))


def _merge_results(mine_path: Path, dest: Path) -> None:
    """Write ``mine_path``'s results to ``dest`` with the runs only ``dest`` holds added (see :func:`export`)."""
    import fcntl
    import hashlib
    import tempfile

    key = hashlib.sha1(str(dest.resolve()).encode()).hexdigest()[:12]  # the lock lives outside the (committed) export
    with open(Path(tempfile.gettempdir()) / f"cisr_ablations_{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one read-merge-write at a time
        mine = load_results(mine_path)
        if dest.is_file():
            theirs = load_results(dest)
            diff = _budget_diff(mine["budget"], theirs["budget"])
            if diff:
                raise ValueError(f"{dest}: the exported study has another budget ({', '.join(diff)} differ); "
                                 "export elsewhere or without merging")
            names = {r["name"] for r in mine["records"]}
            records = _in_runs_order(mine["records"] + [r for r in theirs["records"] if r["name"] not in names])
            mine = {**mine, "records": records, "summary": summary(records)}
        atomic_write(dest, json.dumps(mine, indent=1))


def resume_from(exported: Path, budget: Budget, out: Path) -> list[str]:
    """Continue a study across machines: mark the runs recorded in an exported ``results.json`` as
    finished in ``out`` (their record as ``eval.json``, seed-0 weights back as ``weights.pt``), so that
    :func:`study` trains only the others. A study too long for one sitting is exported with the runs it
    has, committed, and continued next time with ``--resume-from``. Refuses an export of another budget.

    Returns:
        The names of the runs taken over.
    """
    res = load_results(Path(exported) / "results.json")
    mine = {**dataclasses.asdict(budget), "data": data_names(budget)[0]}
    theirs = {k: v for k, v in res["budget"].items() if k != "eval_data"}
    diff = _budget_diff(mine, theirs)
    if diff:
        raise ValueError(f"{exported}: the exported study has another budget ({', '.join(diff)} differ)")
    taken = []
    for rec in res["records"]:
        if rec["name"] == "bicubic" or (out / rec["name"] / "eval.json").exists():
            continue
        rdir = out / rec["name"]
        rdir.mkdir(parents=True, exist_ok=True)
        weights = Path(exported) / f"{rec['name'].removesuffix('_s0')}.pt"
        if rec.get("seed") == 0 and weights.is_file():
            shutil.copyfile(weights, rdir / "weights.pt")
        atomic_write(rdir / "eval.json", json.dumps(rec, indent=1))
        taken.append(rec["name"])
    return taken


def load_results(path: str | Path = EXPORT_DIR / "results.json") -> dict[str, Any]:
    """The study's results.json (default: the shipped one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `make ablations` first")
    res = json.loads(path.read_text())
    if res.get("format") != FORMAT:
        raise ValueError(f"{path} is not a results file of this study (format {res.get('format')!r})")
    return res


def weights_path(name: str, dest: Path = EXPORT_DIR) -> Path:
    """Shipped seed-0 weights of a run: a framework ("psi", "plain", ...) or a Table III name."""
    path = Path(dest) / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `make ablations` first")
    return path


TAG = "ablations"  # README.md's block: <!-- ablations:start --> ... <!-- ablations:end -->
BUDGETS_TAG = "ablations-budgets"  # README.md: the earlier study beside the shipped one
EARLIER = WEIGHTS_DIR / "ablations_300" / "results.json"  # the study before this one (results only)
LONGER_TAG = "ablations-longer"  # README.md: the shipped study beside the whole study at 4x its steps
LONGER_STEPS = 4 * Budget.steps  # `make ablations-longer`: the whole study, over several sittings
LONGER = WEIGHTS_DIR / f"ablations_{LONGER_STEPS}" / "results.json"  # its export (results only)


def fill_readme(res: dict[str, Any], readme: Path, earlier: Path | None = EARLIER,
                longer: Path | None = LONGER) -> None:
    """Replace the ablation block of ``readme`` with :func:`report`, and, when ``earlier`` / ``longer`` (the
    results.json of a smaller / larger budget) exist, the budgets blocks with :func:`compare_budgets`
    (one atomic write: nothing is written when a marker is missing)."""
    blocks = {TAG: report(res)}
    if earlier is not None and Path(earlier).is_file():
        blocks[BUDGETS_TAG] = compare_budgets(load_results(earlier), res)
    if longer is not None and Path(longer).is_file():
        blocks[LONGER_TAG] = compare_budgets(res, load_results(longer))
    fill_blocks(readme, {tag: md.rstrip("\n") for tag, md in blocks.items()})


@command("python -m cisr_lib.ablations")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cisr_lib.ablations", description=__doc__.splitlines()[0])
    b = Budget()
    ap.add_argument("--out", default="runs/ablations", help="run folders and results.json")
    ap.add_argument("--steps", type=int, default=b.steps)
    ap.add_argument("--batch-size", type=int, default=b.batch_size)
    ap.add_argument("--patch", type=int, default=b.lr_patch, help="LR patch side")
    ap.add_argument("--data", default=b.data, help="photos (falls back to embedded) or embedded")
    ap.add_argument("--eval-side", type=int, default=b.eval_side)
    ap.add_argument("--threads", type=int, default=b.threads)
    ap.add_argument("--device", default=b.device, help="auto (CUDA, then MPS, then CPU), cpu, cuda, ...")
    ap.add_argument("--only", nargs="*", help="run names (default: all)")
    ap.add_argument("--group", choices=GROUPS, help="only the runs of this group")
    ap.add_argument("--export", action="store_true", help="copy results and seed-0 weights to --export-dir")
    ap.add_argument("--results-only", action="store_true", help="--export copies results.json, not the weights")
    ap.add_argument("--merge", action="store_true", help="--export keeps the runs already in --export-dir's results.json "
                    "(same budget): processes training different --only runs share one export")
    ap.add_argument("--export-dir", default=str(EXPORT_DIR), help="where --export copies to (default: %(default)s, "
                    "the study the notebooks read)")
    ap.add_argument("--resume-from", help="an exported study of the same budget: its runs count as finished")
    ap.add_argument("--readme", help="fill the tables between the ablation markers of this README")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    budget = dataclasses.replace(b, steps=args.steps, batch_size=args.batch_size, lr_patch=args.patch,
                                 data=args.data, eval_side=args.eval_side, threads=args.threads,
                                 device=args.device)
    torch.set_num_threads(args.threads)
    if args.resume_from:
        taken = resume_from(Path(args.resume_from), budget, Path(args.out))
        print(f"{len(taken)} run(s) taken over from {args.resume_from}")
    refresh = (lambda: export(Path(args.out), Path(args.export_dir), weights=not args.results_only, merge=args.merge)) \
        if args.export else None  # after every finished run: a sitting cut short keeps its export
    res = study(budget, Path(args.out), args.only, progress=not args.quiet, group=args.group, after_each=refresh)
    if args.readme:
        fill_readme(res, Path(args.readme))
    for v, s in res["summary"]["frameworks"].items():
        print(f"{v:9s} {s['mean']:.3f} dB (std {s['std']:.3f}, n {s['n']})")
    for row in res["summary"]["table_iii"]:
        vs = f" ({row['minus_ours']:+.3f} vs ours)" if row["minus_ours"] is not None else " (PSI seed 0 not in this call)"
        print(f"{row['label']:32s} {row['psnr']:.3f} dB{vs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
