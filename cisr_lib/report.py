"""Markdown tables of evaluation results: Table I / II shapes, per-step PSNR, artifact reduction.

Every table reads the dict that :func:`cisr_lib.evaluate.evaluate` returns (or a list of them, one
row each); :func:`markdown_report` is what ``cisr eval`` writes to ``tables.md``.

Derived in notebooks/10_evaluation.ipynb
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _as_list(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [results] if isinstance(results, Mapping) else list(results)


def _scales_of(results: list[Mapping[str, Any]]) -> list[int]:
    return sorted({int(s) for r in results for s in r["per_scale"]})


def _configs_of(results: list[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in results:
        names += [c for c in r["configs"] if c not in names]
    return names


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_i(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """Table I shape: one row per scale and method, the means over all images of the scale.

    Args:
        results: one result of :func:`evaluate` or a list of them (one row each per scale).

    Returns:
        A markdown table with columns Scale, Method, PSNR-Y, SSIM-Y, [IFC,] PSNR-B-Y, Images;
        IFC only when some result has it.
    """
    results = _as_list(results)
    has_ifc = any("ifc" in m for r in results for m in r["per_scale"].values())
    header = ["Scale", "Method", "PSNR-Y (dB)", "SSIM-Y"] + (["IFC"] if has_ifc else []) + ["PSNR-B-Y (dB)", "Images"]
    rows = []
    for s in _scales_of(results):
        for r in results:
            m = r["per_scale"].get(str(s))
            if m is None:
                continue
            row = [f"x{s}", r["label"], _fmt(m.get("psnr"), 2), _fmt(m.get("ssim"), 4)]
            row += [_fmt(m.get("ifc"), 4)] if has_ifc else []
            rows.append(row + [_fmt(m.get("psnr_b"), 2), str(m["n"])])
    return _md(header, rows)


def table_ii(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], metric: str = "psnr") -> str:
    """Table II shape: one row per scale and method, one column per configuration, and the average.

    Args:
        results: one result of :func:`evaluate` or a list of them.
        metric: ``"psnr"`` (the paper's Table II), ``"ssim"``, ``"psnr_b"`` or ``"ifc"``.

    Returns:
        A markdown table with columns Scale, Method, one per configuration, Average (the mean over
        all images of the scale, as in Table I; "-" for a method that lacks some of the table's
        configurations, whose average would not be comparable).
    """
    if metric not in ("psnr", "ssim", "psnr_b", "ifc"):
        raise ValueError(f"unknown metric {metric!r}")
    results = _as_list(results)
    digits = 2 if metric.startswith("psnr") else 4
    cfgs = _configs_of(results)
    rows = []
    for s in _scales_of(results):
        for r in results:
            per = r["per_config"].get(str(s))
            if per is None:
                continue
            row = [f"x{s}", r["label"]] + [_fmt(per.get(c, {}).get(metric), digits) for c in cfgs]
            avg = r["per_scale"][str(s)].get(metric) if all(c in per for c in cfgs) else None
            rows.append(row + [_fmt(avg, digits)])
    return _md(["Scale", "Method", *cfgs, "Average"], rows)


def table_steps(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """Supp. 5 shape: PSNR-Y of ``xs[j]`` after every unfolding step j, averaged per scale.

    Values have three decimals: consecutive steps often differ by less than 0.01 dB.

    Args:
        results: one result of :func:`evaluate` or a list of them; those without unfolding
            steps (bicubic) are left out.

    Returns:
        A markdown table with columns Scale, Method, j=1 .. j=J (J = the largest of the methods;
        "-" where a method has fewer steps), or "" when no result has steps.
    """
    results = _as_list(results)
    rows, width = [], 0
    for s in _scales_of(results):
        for r in results:
            steps = r["per_scale"].get(str(s), {}).get("steps_psnr")
            if steps:
                rows.append((s, r["label"], steps))
                width = max(width, len(steps))
    if not rows:
        return ""
    body = [[f"x{s}", lab] + [_fmt(steps[j] if j < len(steps) else None, 3) for j in range(width)]
            for s, lab, steps in rows]
    return _md(["Scale", "Method"] + [f"j={j + 1}" for j in range(width)], body)


def table_ar(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """Supp. 3 shape: artifact reduction of Module I against the clean LR image, per configuration.

    For every scale, the PSNR-Y and SSIM-Y of the compressed input z and of the ARM output
    ``ys[-1]`` of each method with an ARM, per configuration and on average (whole LR images).

    Args:
        results: one result of :func:`evaluate` or a list of them; those without ARM are left out.

    Returns:
        A markdown table with columns Scale, Image, Metric, one per configuration, Average, or ""
        when no result has an ARM.
    """
    results = [r for r in _as_list(results) if any("ar" in m for m in r["per_scale"].values())]
    if not results:
        return ""
    cfgs = _configs_of(results)
    rows = []
    for s in _scales_of(results):
        present = [r for r in results if "ar" in r["per_scale"].get(str(s), {})]
        if not present:
            continue
        for metric, digits in (("psnr", 2), ("ssim", 4)):
            per, avg = present[0]["per_config"][str(s)], present[0]["per_scale"][str(s)]
            rows.append([f"x{s}", "z (compressed input)", metric.upper() + "-Y"]
                        + [_fmt(per[c]["ar"][f"z_{metric}"] if c in per else None, digits) for c in cfgs]
                        + [_fmt(avg["ar"][f"z_{metric}"], digits)])
            for r in present:
                per, avg = r["per_config"][str(s)], r["per_scale"][str(s)]
                rows.append([f"x{s}", f"{r['label']}: ARM y_J", metric.upper() + "-Y"]
                            + [_fmt(per[c]["ar"][metric] if c in per else None, digits) for c in cfgs]
                            + [_fmt(avg["ar"][metric], digits)])
    return _md(["Scale", "Image", "Metric", *cfgs, "Average"], rows)


def markdown_report(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """Every table of one or several results, with headings (what ``tables.md`` holds).

    Args:
        results: one result of :func:`evaluate` or a list of them.

    Returns:
        Markdown text: Table I, Table II for PSNR-Y and SSIM-Y, and, when present, the per-step
        (supp. 5) and artifact-reduction (supp. 3) tables.
    """
    results = _as_list(results)
    settings = results[0]["settings"]
    parts = [
        "# Evaluation\n",
        f"Data: {results[0]['data']}; max_side {settings['max_side']}; window {settings['window']}. "
        "Y channel (MATLAB BT.601), `scale` pixels shaved from each side of the HR images; "
        "LR comparisons on whole images.\n",
        "## Table I shape: mean over all images and configurations\n",
        table_i(results),
        "## Table II shape: PSNR-Y (dB) per configuration\n",
        table_ii(results, "psnr"),
        "## SSIM-Y per configuration\n",
        table_ii(results, "ssim"),
    ]
    steps = table_steps(results)
    if steps:
        parts += ["## PSNR-Y (dB) after each unfolding step (supplementary sec. 5)\n", steps]
    ar = table_ar(results)
    if ar:
        parts += ["## Artifact reduction of Module I against the clean LR image (supplementary sec. 3)\n", ar]
    return "\n".join(parts)
