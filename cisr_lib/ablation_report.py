"""What the ablation study shows: its tables, what its seeds can resolve, and two budgets side by side.

Pure functions of a study's ``results.json`` (:func:`cisr_lib.ablations.study` writes it): the markdown
report of the README block, the verdicts of notebook 11's rule (:func:`differences`), and the comparison
of two studies at different budgets (:func:`compare_budgets`), with a seed-0 Table III row read both
against PSI seed 0 and against PSI's seed mean, and a proxy for which reading is the less noisy
(:func:`table_iii_vs_mean`, :func:`seed_pairing`). ``cisr_lib.ablations`` re-exports them.

Derived in notebooks/11_ablations.ipynb
"""

from __future__ import annotations

import statistics
from typing import Any

from cisr_lib.paper import FRAMEWORKS


def report(res: dict[str, Any]) -> str:
    """Markdown tables of a study: the budget, the frameworks over seeds, Table III beside the paper."""
    b, sm = res["budget"], res["summary"]
    by = {r["name"]: r for r in res["records"]}
    train_min = sum(r.get("train_seconds", 0) for r in res["records"]) / 60
    lines = [f"Budget: {b['model']} x{b['scale']}, {', '.join(f'{c}{q}' for c, q in b['configs'])}, {b['steps']} steps "
             f"of batch {b['batch_size']} ({b['lr_patch']}x{b['lr_patch']} LR patches), Adam lr {b['lr']:g} "
             f"({b['schedule']}), data `{b['data']}`; evaluated on `{b['eval_data']}` ({b['eval_side']}x{b['eval_side']} "
             f"HR centre crops, PSNR-Y, crop = scale); device {res['device']}, {res['hardware']}, torch {res['torch']}: "
             f"{train_min:.0f} min of training in all.", "",
             "| framework | PSNR-Y mean | std over seeds | seeds | per seed |", "|---|---|---|---|---|"]
    for v in ("bicubic", *FRAMEWORKS):
        if v in sm["frameworks"]:
            f = sm["frameworks"][v]
            lines.append(f"| {v} | {f['mean']:.3f} | {f['std']:.3f} | {f['n'] if v != 'bicubic' else '-'} | "
                         + ", ".join(f"{x:.3f}" for x in f["values"]) + " |")
    if sm["table_iii"] and "psi_s0" in by:
        lines += ["", f"| Table III (seed 0) | paper (tiny, DIV2K) | ours | ours - PSI seed 0 ({by['psi_s0']['psnr']:.3f}) |",
                  "|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['paper']:.2f} | {r['psnr']:.3f} | {r['minus_ours']:+.3f} |" for r in sm["table_iii"]]
    noise = table_iii_noise(res)
    if noise is not None:
        spans = ", ".join(f"{v} {r:.3f}" for v, r in seed_ranges(res).items())
        lines += ["", f"Seed ranges (max - min over seeds, dB): {spans}. A single-seed Table III difference "
                  f"within the largest, {noise:.3f} dB, is not resolved by this budget."]
    return "\n".join(lines) + "\n"


def differences(res: dict[str, Any]) -> list[tuple[str, float, float | None, str]]:
    """What a study can resolve (notebook 11, Sec. 5): ``(name, dB, noise, verdict)`` for each framework's
    mean minus PSI's mean, and each Table III row minus PSI seed 0.

    Two frameworks differ resolvably when their means are further apart than the larger of their two
    seed ranges (bicubic, deterministic, has none); a Table III row (one seed) when it differs from PSI
    seed 0 by more than :func:`table_iii_noise`. Without two seeds the verdict is "seed spread unknown".
    """
    fw, t3 = res["summary"]["frameworks"], res["summary"]["table_iii"]
    ranges = seed_ranges(res)

    def spread(v):
        return 0.0 if v == "bicubic" else ranges.get(v)

    out = []
    if "psi" in fw:
        for v in ("bicubic", *FRAMEWORKS):
            if v in fw and v != "psi":
                r_v, r_psi = spread(v), spread("psi")
                noise = None if r_v is None or r_psi is None else max(r_v, r_psi)
                d = fw[v]["mean"] - fw["psi"]["mean"]
                out.append((f"{v} - PSI (means)", d, noise, _verdict(d, noise)))
    noise = table_iii_noise(res)
    for row in t3 if any(r["name"] == "psi_s0" for r in res["records"]) else []:
        out.append((f"{row['label']} - PSI s0", row["minus_ours"], noise, _verdict(row["minus_ours"], noise)))
    return out


def _verdict(d: float, noise: float | None) -> str:
    """The rule of notebook 11, Sec. 5: resolved when the difference exceeds the noise yardstick."""
    return "seed spread unknown" if noise is None else ("resolved" if abs(d) > noise else "NOT resolved")


def seed_ranges(res: dict[str, Any]) -> dict[str, float]:
    """max - min over seeds of every trained framework with at least two seeds, in FRAMEWORKS order."""
    fw = res["summary"]["frameworks"]
    return {v: fw[v]["max"] - fw[v]["min"] for v in FRAMEWORKS if v in fw and fw[v]["n"] > 1}


def table_iii_noise(res: dict[str, Any]) -> float | None:
    """The yardstick of a one-seed Table III row: the largest seed range (max - min) of any trained framework.

    A variant's own seed range is not measured (one seed), and three seeds estimate a range poorly (the
    frameworks' ranges differ several-fold at one budget). Taking PSI's alone would make the luckiest draw
    the noise; the largest is the conservative reading. None without a framework of two seeds.
    """
    return max(seed_ranges(res).values(), default=None)


def seed_pairing(res: dict[str, Any]) -> dict[str, Any]:
    """Does a seed's luck carry across variants? A proxy for comparing a seed-0 row with PSI seed 0.

    A seed fixes the order of the training patches for every variant, and the initial weights only of the
    tensors two architectures build alike (most of them for some Table III rows, almost none between
    frameworks). The frameworks, with several seeds each, show how much luck the shared part carries: a
    framework's difference from PSI, taken seed by seed, moves less over the seeds than the framework itself
    exactly when the two covary by more than half of PSI's variance, which is also when the seed-paired
    difference is less noisy than the difference from PSI's seed mean (in variances: Var(A - B) < Var(A)
    and Var(A_0 - B_0) < Var(A_0 - mean B) both reduce to Cov(A, B) > Var(B) / 2; ranges over three seeds
    estimate them roughly). Returns ``best_seed`` (the highest-scoring seed of each framework
    with two seeds or more, the lowest such seed on a tie) and ``paired``: for each trained framework other
    than PSI, over the seeds it shares with PSI (two at least), ``range`` (max - min of its own PSNR-Y) and
    ``paired_range`` (max - min of its PSNR-Y minus PSI's, seed by seed).
    """
    by_seed: dict[str, dict[int, float]] = {}
    for r in res["records"]:
        if r.get("group") == "frameworks" and r.get("seed") is not None:
            by_seed.setdefault(r["variant"], {})[r["seed"]] = r["psnr"]
    psi = by_seed.get("psi", {})
    paired = {}
    for v in FRAMEWORKS:
        common = sorted(set(by_seed.get(v, {})) & set(psi)) if v != "psi" else []
        if len(common) > 1:
            own = [by_seed[v][s] for s in common]
            diff = [by_seed[v][s] - psi[s] for s in common]
            paired[v] = {"range": max(own) - min(own), "paired_range": max(diff) - min(diff)}
    best = {v: max(sorted(s), key=s.get) for v in FRAMEWORKS if len(s := by_seed.get(v, {})) > 1}
    return {"best_seed": best, "paired": paired}


def table_iii_vs_mean(res: dict[str, Any]) -> list[tuple[str, float]]:
    """Each Table III row (seed 0) minus PSI's seed mean instead of PSI seed 0: ``(label, dB)``.

    The unpaired reading, beside the seed-paired one of :func:`differences`; empty unless PSI has two
    seeds or more (with one, the mean is seed 0 and the reading is the paired one)."""
    psi = res["summary"]["frameworks"].get("psi")
    return [(r["label"], r["psnr"] - psi["mean"]) for r in res["summary"]["table_iii"]] if psi and psi["n"] > 1 else []


def resolved_both_ways(res: dict[str, Any]) -> list[tuple[str, float, float]]:
    """The Table III rows beyond :func:`table_iii_noise` both against PSI seed 0 (:func:`differences`) and
    against PSI's seed mean (:func:`table_iii_vs_mean`): ``(label, dB vs PSI seed 0, dB vs the mean)``."""
    noise = table_iii_noise(res)
    vs_s0 = {r["label"]: r["minus_ours"] for r in res["summary"]["table_iii"] if r.get("minus_ours") is not None}
    return [(lab, vs_s0[lab], d) for lab, d in table_iii_vs_mean(res)
            if noise is not None and lab in vs_s0 and abs(vs_s0[lab]) > noise and abs(d) > noise]


def _pairing_line(res: dict[str, Any]) -> str:
    sp = seed_pairing(res)
    best = ", ".join(f"{v} s{s}" for v, s in sp["best_seed"].items()) or "-"
    paired = ", ".join(f"{v} {p['paired_range']:.3f} (own {p['range']:.3f})" for v, p in sp["paired"].items()) or "-"
    narrower = sum(p["paired_range"] < p["range"] for p in sp["paired"].values())
    return (f"{res['budget']['steps']} steps: best seed: {best}; range over seeds of framework minus PSI, "
            f"seed by seed: {paired}; pairing narrows the range for {narrower} of {len(sp['paired'])}.")


def compare_budgets(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Markdown: two budgets side by side: the frameworks, the verdicts of :func:`differences`, the Table III
    rows read against PSI's seed mean (:func:`table_iii_vs_mean`), the seed-pairing proxy of both studies
    (:func:`seed_pairing`), and the per-step and ARM scores of the frameworks."""
    steps = (old["budget"]["steps"], new["budget"]["steps"])
    fo, fn = old["summary"]["frameworks"], new["summary"]["frameworks"]
    lines = [f"Training arithmetic: {steps[0]} steps: {_precision(old)}; {steps[1]} steps: {_precision(new)}.", "",
             f"| framework | {steps[0]} steps: mean (std, seeds) | {steps[1]} steps: mean (std, seeds) | change |",
             "|---|---|---|---|"]
    for v in ("bicubic", *FRAMEWORKS):
        if v in fo and v in fn:
            cell = lambda f: f"{f['mean']:.3f} ({f['std']:.3f}, {f['n']})"  # noqa: E731
            lines.append(f"| {v} | {cell(fo[v])} | {cell(fn[v])} | {fn[v]['mean'] - fo[v]['mean']:+.3f} |")
    before = {name: (d, noise, verdict) for name, d, noise, verdict in differences(old)}
    lines += ["", f"| difference | {steps[0]} steps: dB (noise) | verdict | {steps[1]} steps: dB (noise) | verdict |",
              "|---|---|---|---|---|"]
    fmt = lambda d, noise: f"{round(d, 3) + 0.0:+.3f} ({'-' if noise is None else f'{noise:.3f}'})"  # noqa: E731
    for name, d, noise, verdict in differences(new):
        if name in before:
            d0, n0, v0 = before[name]
            lines.append(f"| {name} | {fmt(d0, n0)} | {v0} | {fmt(d, noise)} | {verdict} |")
    mean_old = dict(table_iii_vs_mean(old))
    rows = [(lab, d) for lab, d in table_iii_vs_mean(new) if lab in mean_old]
    if rows:
        n0, n1 = table_iii_noise(old), table_iii_noise(new)
        lines += ["", f"| Table III row (seed 0) minus PSI's seed mean | {steps[0]} steps: dB (noise) | verdict | "
                  f"{steps[1]} steps: dB (noise) | verdict |", "|---|---|---|---|---|"]
        lines += [f"| {lab} | {fmt(mean_old[lab], n0)} | {_verdict(mean_old[lab], n0)} | {fmt(d, n1)} | "
                  f"{_verdict(d, n1)} |" for lab, d in rows]
    lines += ["", "Seed pairing (does a seed's luck carry across variants?): " + _pairing_line(old) + " "
              + _pairing_line(new)]
    lines += ["", f"| framework (seed mean) | {steps[0]} steps: x_1, x_J | ARM over z | {steps[1]} steps: x_1, x_J | "
              "ARM over z |", "|---|---|---|---|---|"]
    for v in FRAMEWORKS:
        cells = [_steps_and_arm(res, v) for res in (old, new)]
        if all(cells):
            lines.append(f"| {v} | " + " | ".join(" | ".join(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _precision(res: dict[str, Any]) -> str:
    """The arithmetic a study's runs were trained in, as their records state it."""
    found = sorted({p for r in res["records"] for p in r.get("precision") or ()})
    unknown = any(r.get("name") != "bicubic" and not r.get("precision") for r in res["records"])
    return ", ".join(found + (["not recorded (runs made before the trainer logged it)"] if unknown else [])) or "-"


def _steps_and_arm(res: dict[str, Any], variant: str) -> tuple[str, str] | None:
    """PSNR-Y of the first and last unfolding step, and the ARM's output over z (LR, against the clean
    LR image), as seed means of one framework; None when the study has no seeds of it."""
    recs = [r for r in res["records"] if r.get("group") == "frameworks" and r.get("variant") == variant]
    if not recs:
        return None
    first = statistics.fmean(r["steps_psnr"][0] for r in recs)
    last = statistics.fmean(r["steps_psnr"][-1] for r in recs)
    arm = [r["ar_psnr"] - r["z_psnr"] for r in recs if r.get("ar_psnr") is not None]
    return f"{first:.3f}, {last:.3f}", (f"{statistics.fmean(arm):+.3f}" if arm else "-")
