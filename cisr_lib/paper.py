"""Every number and label the paper publishes that this project compares against, in one place.

Luo, Zhou, Liao, Qiu, "Super-resolving Compressed Images via Parallel and Series Integration of
Artifact Reduction and Resolution Enhancement" (the text: ``../shared/seed/``).

* :data:`TABLE_I`: PSNR / SSIM / IFC / SIS per scale and method, the mean over all test images;
* :data:`TABLE_II`: PSNR per scale, method and configuration (JPEG q10-q50, WebP q5-q40);
* :data:`TABLE_III`: the ablations at x2, JPEG q10 (tiny model), with this project's run names;
* :data:`STREAMS`: the four input streams of Table III and the ablation that removes each;
* :data:`SUPPLEMENT` and :data:`SUPP_TABLE_AR`: the facts taken from the supplementary material, quoted.

Notebooks 10 and 11, :mod:`cisr_lib.ablations` and :mod:`cisr_lib.widgets` read them from here.
"""

from __future__ import annotations

from cisr_lib.degradations import PAPER_CONFIGS, config_name

CONFIG_NAMES: tuple[str, ...] = tuple(config_name(*c) for c in PAPER_CONFIGS)  # jpeg10 ... webp40, the paper's order

# Table I: (PSNR, SSIM, IFC, SIS), each the mean over the 1,000 test images of a scale.
TABLE_I: dict[int, dict[str, tuple[float, float, float, float]]] = {
    2: {"tiny": (29.97, 0.8149, 2.0978, 0.7495), "full": (30.10, 0.8181, 2.1521, 0.7576),
        "DnCNN + USRNet": (29.49, 0.8028, 1.8850, 0.7212)},
    3: {"tiny": (27.84, 0.7536, 1.3947, 0.5864), "full": (27.94, 0.7564, 1.4355, 0.5893),
        "DnCNN + USRNet": (27.43, 0.7392, 1.2208, 0.5399)},
    4: {"tiny": (26.55, 0.7117, 1.0267, 0.4404), "full": (26.62, 0.7138, 1.0504, 0.4418),
        "DnCNN + USRNet": (26.18, 0.6964, 0.8811, 0.3863)},
}

# Table II: PSNR per configuration in CONFIG_NAMES order, each the mean over 100 test images.
_TABLE_II_ROWS = {
    2: {"tiny": "28.01 29.51 30.31 30.84 31.25 28.41 29.11 30.07 30.81 31.41",
        "full": "28.11 29.61 30.43 30.95 31.37 28.56 29.26 30.20 30.93 31.53",
        "DnCNN + USRNet": "27.68 29.12 29.90 30.42 30.82 27.74 28.48 29.51 30.28 30.93"},
    3: {"tiny": "26.22 27.43 28.08 28.49 28.78 26.65 27.23 27.98 28.54 28.99",
        "full": "26.31 27.53 28.18 28.59 28.88 26.78 27.35 28.09 28.63 29.07",
        "DnCNN + USRNet": "25.96 27.09 27.68 28.08 28.37 26.09 26.72 27.53 28.13 28.61"},
    4: {"tiny": "25.12 26.21 26.76 27.11 27.36 25.53 26.03 26.71 27.19 27.56",
        "full": "25.17 26.25 26.81 27.17 27.44 25.62 26.13 26.78 27.25 27.62",
        "DnCNN + USRNet": "24.87 25.87 26.39 26.72 26.97 25.05 25.59 26.31 26.83 27.23"},
}
TABLE_II: dict[int, dict[str, dict[str, float]]] = {
    s: {m: dict(zip(CONFIG_NAMES, map(float, row.split()))) for m, row in by.items()}
    for s, by in _TABLE_II_ROWS.items()}

# Table III, in the paper's order: (run name, label, ablation, skip, PSNR at x2 JPEG q10, tiny model).
# The frameworks of Fig. 1 that the ablation study trains beside bicubic: a plain SR network on z,
# the series cascade (Fig. 1(b): artifact reduction, then super-resolution), the parallel joint model
# (Fig. 1(a)) and PSI (Fig. 1(c)).
FRAMEWORKS: tuple[str, ...] = ("plain", "cascade", "parallel", "psi")

TABLE_III: tuple[tuple[str, str, tuple[str, ...], str, float], ...] = (
    ("no_arm_input", "w/o I-CI", ("no_arm_input",), "adaptive", 27.93),
    ("no_arm_aux", "w/o I-AI", ("no_arm_aux",), "adaptive", 27.91),
    ("no_rem_input", "w/o II-CI", ("no_rem_input",), "adaptive", 27.93),
    ("no_rem_aux", "w/o II-AI", ("no_rem_aux",), "adaptive", 27.88),
    ("no_nonlocal", "w/o non-local operator", ("no_nonlocal",), "adaptive", 27.94),
    ("traditional_nonlocal", "traditional non-local operator", ("traditional_nonlocal",), "adaptive", 27.95),
    ("skip_none", "w/o residual", (), "none", 27.90),
    ("skip_z", "z as residual", (), "z", 27.95),
    ("skip_g", "g as residual", (), "g", 27.96),
    ("skip_u", "u as residual", (), "u", 27.97),
)
TABLE_III_OURS = TABLE_II[2]["tiny"]["jpeg10"]  # Table III's "Ours" is the tiny model of Table II: 28.01 dB

# The input streams of Table III: I = ARM, II = REM; CI = compressed input z, AI = auxiliary input.
STREAMS: tuple[tuple[str, str], ...] = (("I-CI", "no_arm_input"), ("I-AI", "no_arm_aux"),
                                        ("II-CI", "no_rem_input"), ("II-AI", "no_rem_aux"))

# The supplementary material: the paper's online appendix (SUPPLEMENT_URL), reproduced after the references
# in the text of ../shared/seed/. SUPPLEMENT holds verbatim quotes (italics dropped), by section number;
# SUPPLEMENT_NOTES what this project reads in a section that has no sentence to quote.
SUPPLEMENT_URL = "http://www.vista.ac.cn/cisr-pcs/"
SUPPLEMENT: dict[str, str] = {
    "1": "We take these 100 images as our testing data for our all experiments.",
    "2": ("We prepare dataset by two steps: 1) Bicubic down-sampling by MATLAB imresize. 2) Compressing "
          "down-sampled images by MATLAB imwrite for JPEG or OPENCV imwrite for WebP."),
    "3": "3. Comparisons for Compression Artifacts Reduction",
    "5": "5. Each Time Step Results",
}
SUPPLEMENT_NOTES: dict[str, str] = {
    "3": ("a table of PSNR and SSIM of the artifact-reduction output per compression type and quality factor "
          "(SUPP_TABLE_AR), on the 100 test images of sec. 1; the scale is not stated"),
    "5": "figures only, no numbers",
}

# Supplementary sec. 3.1: artifact reduction, PSNR then SSIM per configuration (CONFIG_NAMES order), and
# the "Average" column as published. The published averages are not the means of their rows, in PSNR nor
# in SSIM (tests/test_paper.py records this), and tiny's jpeg30 PSNR (34.82) is the only cell where tiny
# beats full (34.50), while tiny's jpeg20 and jpeg40 are below full's: probably a typo in the paper.
_SUPP_AR_ROWS = {
    "tiny": ("30.32 32.84 34.82 35.34 36.16 30.81 31.91 33.48 34.77 35.95", 33.66,
             "0.8603 0.9126 0.9345 0.9462 0.9541 0.8655 0.8900 0.9183 0.9363 0.9487", 0.9226),
    "full": ("30.46 33.00 34.50 35.54 36.38 31.02 32.12 33.69 34.98 36.16", 33.87,
             "0.8633 0.9148 0.9363 0.9479 0.9557 0.8695 0.8934 0.9209 0.9384 0.9504", 0.9251),
}
SUPP_TABLE_AR: dict[str, dict[str, dict[str, float] | float]] = {
    m: {"psnr": dict(zip(CONFIG_NAMES, map(float, p.split()))), "psnr_average": pa,
        "ssim": dict(zip(CONFIG_NAMES, map(float, s.split()))), "ssim_average": sa}
    for m, (p, pa, s, sa) in _SUPP_AR_ROWS.items()}
