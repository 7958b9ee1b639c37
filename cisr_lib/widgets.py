"""Interactive widgets for the notebooks (ipywidgets): explore the degradation and the unfolding.

Each builder returns a small object whose ``widget`` attribute is what a notebook displays and
whose controls are plain attributes, so the logic is testable without a browser: setting a
control's ``.value`` fires the callback, which recomputes ``result`` and refreshes the picture and
the caption (``tests/test_widgets.py`` does exactly that).

* :class:`CodecExplorer`: codec, quality and scale of ``z = C D x`` (eq. 5) on one image; shows
  the bicubic up-scaling of ``z`` beside the HR image, with bits per LR pixel and PSNR-Y.
* :class:`UnfoldingViewer`: the estimates ``y_j`` (ARM) and ``x_j`` (REM) of every unfolding step
  of a model (eq. 12's recursion), with PSNR-Y against the truth when it is given.
* :class:`AttentionInspector`: pick a pixel m and see the weights w(m, n) of eq. (10) over the
  image, with similarity measured on the guide g or on z itself, with or without the mask d(z).
* :class:`AblationToggles`: switch the Fig. 2 streams, the non-local operator and the long skip of
  PSI (Table III) and see the trained variant's output beside PSI's and the truth; only the
  combinations the ablation study trained (one change at a time) have a model.
"""

from __future__ import annotations

import numpy as np

from cisr_lib import paper
from cisr_lib.degradations import PAPER_CONFIGS, compress_with_bitstream, imresize, modcrop
from cisr_lib.imagewrite import encode_image
from cisr_lib.metrics import psnr
from cisr_lib.models.combine import SKIP_MODES


def _png(img: np.ndarray) -> bytes:
    return encode_image(np.ascontiguousarray(img), ".png")


def _side_by_side(a: np.ndarray, b: np.ndarray, gap: int = 4) -> np.ndarray:
    h = max(a.shape[0], b.shape[0])
    out = np.full((h, a.shape[1] + gap + b.shape[1], 3), 255, np.uint8)
    out[:a.shape[0], :a.shape[1]] = a
    out[:b.shape[0], a.shape[1] + gap:] = b
    return out


class CodecExplorer:
    """Codec / quality / scale explorer on one HR image (uint8 HxWx3 RGB).

    Attributes:
        codec, quality, scale: the controls (Dropdown, IntSlider, Dropdown).
        image: the ``ipywidgets.Image`` showing bicubic(z) | HR.
        caption: an ``HTML`` with the numbers.
        result: ``{"codec", "quality", "scale", "bpp", "psnr_y", "z", "up"}`` of the current setting.
        widget: the ``VBox`` to display.
    """

    def __init__(self, hr: np.ndarray, scale: int = 2, codec: str = "jpeg", quality: int = 10):
        import ipywidgets as w

        self.hr_full = hr
        codecs = sorted({c for c, _ in PAPER_CONFIGS})
        self.codec = w.Dropdown(options=codecs, value=codec, description="codec")
        self.quality = w.IntSlider(value=quality, min=1, max=100, step=1, description="quality",
                                   continuous_update=False)
        self.scale = w.Dropdown(options=[2, 3, 4], value=scale, description="scale")
        self.image = w.Image(format="png")
        self.caption = w.HTML()
        self.result: dict = {}
        for control in (self.codec, self.quality, self.scale):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.codec, self.quality, self.scale]), self.caption, self.image])
        self.update()

    def update(self) -> dict:
        """Recompute ``result`` for the current controls and refresh the picture and caption."""
        s, codec, q = int(self.scale.value), self.codec.value, int(self.quality.value)
        hr = modcrop(self.hr_full, s)
        y = imresize(hr, 1 / s)  # (1) data term: y = D x
        z, bits = compress_with_bitstream(y, codec, q, rng=np.random.default_rng(0))  # (2) z = C y
        up = imresize(z, s)
        bpp = 8 * len(bits) / (y.shape[0] * y.shape[1]) if bits is not None else float("nan")
        self.result = {"codec": codec, "quality": q, "scale": s, "bpp": bpp, "psnr_y": psnr(up, hr, s), "z": z,
                       "up": up}
        self.caption.value = (f"<b>{codec} q{q}, x{s}</b>: {bpp:.3f} bits per LR pixel; "
                              f"bicubic(z) vs HR: PSNR-Y {self.result['psnr_y']:.2f} dB (left: bicubic(z), right: HR)")
        self.image.value = _png(_side_by_side(up, hr))
        return self.result


class UnfoldingViewer:
    """The estimates of every unfolding step of a model on one compressed LR image.

    Args:
        model: a CISR-PSI model (``ys, xs = model(z_tensor)``), e.g. from ``pretrained.load_model``.
        z: uint8 hxwx3 RGB compressed LR image.
        hr: optional uint8 (s h)x(s w)x3 truth; y_j is then scored against ``imresize(hr, 1/s)``.

    Attributes:
        step: IntSlider over j = 1..J; which: ToggleButtons "x_j (REM, HR)" / "y_j (ARM, LR)".
        ys, xs: the uint8 estimates of every step (computed once, at construction).
        result: ``{"step", "which", "image", "psnr_y"}`` of the current view (psnr_y None without hr).
        widget: the ``VBox`` to display.
    """

    def __init__(self, model, z: np.ndarray, hr: np.ndarray | None = None):
        import ipywidgets as w
        import torch

        from cisr_lib.convert import tensor2uint, uint2tensor4

        self.scale = int(model.config["scale"])
        self.hr = hr
        self.y_true = imresize(hr, 1 / self.scale) if hr is not None else None
        dev = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            ys, xs = model(uint2tensor4(z).to(dev))  # the recursion of eq. (12), J steps
        model.train(was_training)
        self.ys = [tensor2uint(t.float()) for t in ys]  # J x (h, w, 3)
        self.xs = [tensor2uint(t.float()) for t in xs]  # J x (s h, s w, 3)
        self.step = w.IntSlider(value=len(self.xs), min=1, max=len(self.xs), description="step j",
                                continuous_update=False)
        self.which = w.ToggleButtons(options=["x_j (REM, HR)", "y_j (ARM, LR)"], description="show")
        self.image = w.Image(format="png")
        self.caption = w.HTML()
        self.result: dict = {}
        for control in (self.step, self.which):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.step, self.which]), self.caption, self.image])
        self.update()

    def update(self) -> dict:
        """Recompute ``result`` for the current controls and refresh the picture and caption."""
        j = int(self.step.value)
        hr_view = self.which.value.startswith("x")
        img = (self.xs if hr_view else self.ys)[j - 1]
        ref = self.hr if hr_view else self.y_true
        score = psnr(img, ref, self.scale) if ref is not None else None
        self.result = {"step": j, "which": "x" if hr_view else "y", "image": img, "psnr_y": score}
        name = f"x_{j}" if hr_view else f"y_{j}"
        self.caption.value = f"<b>{name}</b>" + (f": PSNR-Y {score:.2f} dB against the truth" if score is not None else "")
        self.image.value = _png(img)
        return self.result


def _heat_overlay(img: np.ndarray, weights: np.ndarray, query: tuple[int, int]) -> np.ndarray:
    """The image darkened, with the weights in red (scaled to their maximum) and the query in green."""
    out = img.astype(np.float64) * 0.35
    out[..., 0] += 255 * 0.65 * weights / max(float(weights.max()), 1e-12)
    out = np.clip(out, 0, 255).astype(np.uint8)
    out[query[0], query[1]] = (0, 255, 0)
    return out


class AttentionInspector:
    """The attention of one query pixel of a non-local operator (eqs. 9-10).

    Args:
        op: a :class:`cisr_lib.models.nonlocal_op.NonLocal` (its h-network gives h(m)).
        z: uint8 hxwx3 RGB compressed LR image; g: uint8 hxwx3 guide (e.g. an ARM estimate).
        mask: optional hxw {0, 1} array d(z) of eq. (10).

    Attributes:
        row, col: IntSliders choosing m; guide: ToggleButtons "g" / "z" (which image the patch
            distances are measured on; h always comes from g, as in the operator); use_mask: Checkbox.
        result: ``{"query", "guide", "masked", "weights" (h, w), "self_weight", "n90", "u"}`` where n90
            is the number of candidates holding 90 % of the weight and u = sum_n w(m, n) z(n).
        widget: the ``VBox`` to display.
    """

    def __init__(self, op, z: np.ndarray, g: np.ndarray, mask: np.ndarray | None = None):
        import ipywidgets as w
        import torch

        from cisr_lib.convert import uint2tensor4

        self.z, self.g = z, g
        self._zt, self._gt = uint2tensor4(z), uint2tensor4(g)  # (1, 3, h, w)
        self._mask = None if mask is None else torch.as_tensor(mask, dtype=torch.float32)[None, None]
        self.patch = op.patch
        with torch.no_grad():
            self._h = op.estimate_h(self._gt)  # (1, 1, h, w), from the guide g as in the operator
        hh, ww = z.shape[:2]
        self.row = w.IntSlider(value=hh // 2, min=0, max=hh - 1, description="row", continuous_update=False)
        self.col = w.IntSlider(value=ww // 2, min=0, max=ww - 1, description="column", continuous_update=False)
        self.guide = w.ToggleButtons(options=["g", "z"], description="distances on")
        self.use_mask = w.Checkbox(value=mask is not None, description="mask d(z)", disabled=mask is None)
        self.image = w.Image(format="png")
        self.caption = w.HTML()
        self.result: dict = {}
        for control in (self.row, self.col, self.guide, self.use_mask):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.row, self.col]), w.HBox([self.guide, self.use_mask]), self.caption,
                              self.image])
        self.update()

    def update(self) -> dict:
        """Recompute ``result`` for the current controls and refresh the picture and caption."""
        from cisr_lib.models.nonlocal_op import attention_row

        q = (int(self.row.value), int(self.col.value))
        masked = bool(self.use_mask.value) and self._mask is not None
        guide = self._gt if self.guide.value == "g" else self._zt
        wts = attention_row(guide, self._h, q, self.patch, self._mask if masked else None).numpy()  # (10)
        flat = np.sort(wts.ravel())[::-1]
        n90 = int(np.searchsorted(np.cumsum(flat), 0.9) + 1)
        u = np.einsum("hw,hwc->c", wts.astype(np.float64), self.z.astype(np.float64))  # (9) u(m), 0-255
        self.result = {"query": q, "guide": self.guide.value, "masked": masked, "weights": wts,
                       "self_weight": float(wts[q]), "n90": n90, "u": u}
        self.caption.value = (f"<b>m = {q}</b>, distances on {self.guide.value}"
                              f"{', masked by d(z)' if masked else ''}: w(m, m) = {wts[q]:.3f}; "
                              f"{n90} candidates hold 90 % of the weight")
        self.image.value = _png(_side_by_side(_heat_overlay(self.z, wts, q), self.z))
        return self.result


LIVE_ONLY = "[an interactive widget: it runs in a live Jupyter session; the snapshot below shows its defaults]"


def show(explorer) -> None:
    """Display a widget, then a static snapshot of its current view (caption and picture).

    The widget is live in Jupyter; the snapshot is plain HTML and PNG, so a copy executed headless
    (papermill, CI, a rendered site) shows what the widget shows at its defaults instead of the
    text ``VBox(children=...)``.

    Args:
        explorer: any widget object of this module (it has ``widget``, ``caption`` and ``image``).
    """
    from IPython.display import HTML, Image, display

    bundle = explorer.widget._repr_mimebundle_() or {}  # the widget view, and a text fallback we replace
    bundle = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
    bundle["text/plain"] = LIVE_ONLY  # what a saved copy shows instead of the repr "VBox(children=...)"
    display(bundle, raw=True)
    display(HTML(f"<p><i>Snapshot of the view above at its defaults (the widget is live in Jupyter):</i> "
                 f"{explorer.caption.value}</p>"))
    display(Image(data=explorer.image.value))


# The four input streams of Fig. 2 that Table III cuts: (control label, ablation name).
ABLATION_STREAMS = paper.STREAMS  # Table III's four input streams and the ablation removing each
NONLOCAL_CHOICES = {"learned": None, "traditional": "traditional_nonlocal", "none": "no_nonlocal"}
SKIP_CHOICES = SKIP_MODES  # the long-skip modes of Table III (cisr_lib.models.combine)
UNTRAINED = "not trained; change one thing at a time"


def ablation_run(streams: dict[str, bool], nonlocal_mode: str = "learned", skip: str = "adaptive") -> str | None:
    """The run of the ablation study (``cisr_lib.ablations``) that a combination of the toggles is.

    Args:
        streams: "I-CI", "I-AI", "II-CI", "II-AI" -> whether the stream is kept (missing: kept).
        nonlocal_mode: "learned" (the paper's), "traditional" (h = 30) or "none".
        skip: "adaptive" (eq. 11), "none", "z", "g" or "u".

    Returns:
        "psi" when nothing is changed, the Table III run name (e.g. "no_arm_aux", "skip_z") when
        exactly one thing is changed, None when more than one is (the study did not train those).
    """
    if nonlocal_mode not in NONLOCAL_CHOICES or skip not in SKIP_CHOICES:
        raise ValueError(f"nonlocal_mode in {tuple(NONLOCAL_CHOICES)}, skip in {SKIP_CHOICES}")
    unknown = set(streams) - {k for k, _ in ABLATION_STREAMS}
    if unknown:
        raise ValueError(f"unknown stream(s) {sorted(unknown)}")
    changes = [name for label, name in ABLATION_STREAMS if not streams.get(label, True)]
    if NONLOCAL_CHOICES[nonlocal_mode]:
        changes.append(NONLOCAL_CHOICES[nonlocal_mode])
    if skip != "adaptive":
        changes.append(f"skip_{skip}")
    if len(changes) > 1:
        return None
    return changes[0] if changes else "psi"


def _expected_config(run: str) -> tuple[tuple[str, ...], str]:
    """(ablation, skip) that the weights of a run must hold, from the study's Table III list."""
    from cisr_lib.ablations import TABLE_III

    return {"psi": ((), "adaptive"), **{n: (tuple(a), k) for n, _, a, k, _ in TABLE_III}}[run]


class AblationToggles:
    """Table III as switches: the output of the PSI variant trained without one part.

    The ablation study (``python -m cisr_lib.ablations``) trained PSI and ten variants, each with
    exactly one change from PSI (Table III). Each combination of the controls names one of those
    runs (:func:`ablation_run`); a combination with two or more changes was not trained, and the
    widget says so and keeps the last picture. Models and their outputs are cached.

    Args:
        hr: uint8 HxWx3 RGB truth x; keep it small (the whole-image non-local search is quadratic
            in the number of LR pixels).
        weights_dir: folder of the study's exported weights (``psi.pt``, ``no_arm_input.pt``, ...,
            ``skip_u.pt``), e.g. ``cisr_lib.ablations.EXPORT_DIR``; ``psi.pt`` is required.
        scale, codec, quality: the degradation z = C D x of eq. (5) (the study: x2, JPEG q10).
        device: torch device of the models.

    Attributes:
        i_ci, i_ai, ii_ci, ii_ai: Checkboxes of the four streams of Fig. 2 (``streams`` maps the labels
            to them); nonlocal_mode: ToggleButtons learned / traditional / none; skip: ToggleButtons
            adaptive / none / z / g / u.
        z: the compressed LR input; hr: the truth (cropped to a multiple of the scale).
        image: the ``ipywidgets.Image`` showing variant | PSI | truth; caption: an ``HTML``.
        result: ``{"run", "trained", "message", "image", "psnr_y", "psi_psnr_y"}`` of the current
            combination ("run" None and "image" None when it has no model).
        loaded: names of the weights files loaded so far, in order (each is loaded once).
        widget: the ``VBox`` to display.

    Used in notebooks/11_ablations.ipynb
    """

    def __init__(self, hr: np.ndarray, weights_dir, scale: int = 2, codec: str = "jpeg", quality: int = 10,
                 device="cpu"):
        from pathlib import Path

        import ipywidgets as w

        from cisr_lib.degradations import degrade

        self.weights_dir = Path(weights_dir)
        self.scale, self.device = int(scale), device
        deg = degrade(hr, self.scale, codec, quality, rng=np.random.default_rng(0))  # (5) z = C D x
        self.hr, self.z = deg.hr, deg.z
        self.setting = f"{codec} q{quality}, x{self.scale}"
        self._outputs: dict[str, tuple[np.ndarray, float]] = {}
        self._errors: dict[str, str] = {}  # files that exist but hold another model
        self.loaded: list[str] = []
        if not (self.weights_dir / "psi.pt").is_file():
            raise FileNotFoundError(f"{self.weights_dir / 'psi.pt'} not found: every variant is shown beside PSI")
        self.streams = {label: w.Checkbox(value=True, description=label, indent=False) for label, _ in ABLATION_STREAMS}
        self.i_ci, self.i_ai, self.ii_ci, self.ii_ai = self.streams.values()
        self.nonlocal_mode = w.ToggleButtons(options=list(NONLOCAL_CHOICES), value="learned", description="non-local")
        self.skip = w.ToggleButtons(options=list(SKIP_CHOICES), value="adaptive", description="long skip")
        self.image = w.Image(format="png")
        self.caption = w.HTML()
        self.result: dict = {}
        for control in (*self.streams.values(), self.nonlocal_mode, self.skip):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox(list(self.streams.values())), self.nonlocal_mode, self.skip, self.caption,
                              self.image])
        self.update()

    def output(self, run: str) -> tuple[np.ndarray, float] | str:
        """(x_J as uint8, its PSNR-Y) of a run's model on z, cached; a message when it cannot be loaded."""
        if run in self._outputs or run in self._errors:
            return self._outputs.get(run) or self._errors[run]
        import torch

        from cisr_lib.checkpoint import CheckpointError
        from cisr_lib.convert import tensor2uint, uint2tensor4
        from cisr_lib.pretrained import load_model

        path = self.weights_dir / f"{run}.pt"
        if not path.is_file():
            return f"no weights {path.name} in {self.weights_dir} (this export does not hold that run)"
        try:
            model = load_model(path, scale=self.scale, device=self.device)
        except CheckpointError as exc:
            self._errors[run] = f"cannot load {path.name}: {exc}"
            return self._errors[run]
        self.loaded.append(run)
        ablation, skip = _expected_config(run)
        got = (tuple(sorted(model.config.get("ablation", ()) or ())), model.config.get("skip", "adaptive"))
        if model.config.get("variant", "psi") != "psi" or got != (ablation, skip):
            self._errors[run] = f"{path.name} holds ablation={got[0]}, skip={got[1]!r}, not the run {run!r}"
            return self._errors[run]
        with torch.inference_mode():
            _ys, xs = model(uint2tensor4(self.z).to(self.device))  # the J unfolded steps (eq. 12)
        img = tensor2uint(xs[-1].float().cpu())  # x_J, (s h, s w, 3)
        self._outputs[run] = (img, psnr(img, self.hr, self.scale))
        return self._outputs[run]

    def update(self) -> dict:
        """Look up the run of the current controls, refresh the picture and the caption; returns ``result``."""
        from cisr_lib.ablations import TABLE_III

        labels = {"psi": "PSI (all streams, learned non-local, adaptive skip)", **{n: lab for n, lab, *_ in TABLE_III}}
        run = ablation_run({k: bool(c.value) for k, c in self.streams.items()}, self.nonlocal_mode.value,
                           self.skip.value)
        psi_out = self.output("psi")
        if isinstance(psi_out, str):
            raise ValueError(psi_out)
        psi_img, psi_score = psi_out
        out = UNTRAINED if run is None else self.output(run)
        if isinstance(out, str):  # keep the last picture
            self.result = {"run": None, "trained": False, "message": out, "image": None, "psnr_y": None,
                           "psi_psnr_y": psi_score}
            self.caption.value = f"<b>{out}</b> (the picture is the last trained combination)"
            return self.result
        img, score = out
        self.result = {"run": run, "trained": True, "message": "", "image": img, "psnr_y": score,
                       "psi_psnr_y": psi_score}
        self.caption.value = (f"<b>{labels.get(run, run)}</b> ({self.setting}): PSNR-Y {score:.2f} dB, "
                              f"PSI {psi_score:.2f} dB ({score - psi_score:+.2f} dB); "
                              "left: this variant, middle: PSI, right: truth")
        self.image.value = _png(_side_by_side(_side_by_side(img, psi_img), self.hr))
        return self.result
