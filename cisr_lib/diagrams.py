"""Block diagrams of the network, drawn from a built model (Figs. 2-4 of the paper, and the RCAB).

Every label that states a size (channels, groups, blocks, the scale, J, rho) is read from the
modules of the model passed in, never typed, so a figure cannot drift from the code: draw a model
with ``--set n_feats=16`` or a Table III ablation and the figure shows that model (a removed stream
is drawn dashed and grey).

* :func:`psi_figure`: the unfolded model with its four input streams (Fig. 1(c) and Fig. 2).
* :func:`module_figure`: one module, ARM or REM, with the non-local operator, the trunk and the
  adaptive long skip (Fig. 2(a) / 2(b), eq. 7 / 8, eq. 11).
* :func:`nonlocal_figure`: the blocking detector d(z), the h network and the weights of eqs. 9-10
  (Fig. 3).
* :func:`rcab_figure`: the RCAB, its channel attention and the residual groups of the trunk.

Each returns a matplotlib Figure; ``fig.axes[0].texts`` holds every label (the tests read them).

Derived in notebooks/05_backbone_rcan.ipynb (RCAB), 06_nonlocal_operator.ipynb (non-local),
07_adaptive_combination.ipynb (module) and 08_arm_rem_modules.ipynb (the whole model).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

__all__ = ["module_figure", "nonlocal_figure", "psi_figure", "rcab_figure"]

# Fill colours by role (the streams of Fig. 2 keep one colour in every figure).
COLOURS = {
    "input": "#cfe2f3",  # z, the compressed LR input: the parallel stream
    "aux": "#fce5cd",  # the auxiliary estimate: the series stream
    "nonlocal": "#d9ead3",  # u and the operator behind it
    "conv": "#eeeeee",
    "trunk": "#d9d2e9",
    "combine": "#f4cccc",  # eq. (11)
    "output": "#fff2cc",
    "op": "#ffffff",
}


class Canvas:
    """A figure in data units (1 unit is about 0.6 inch) with named boxes and arrows between them."""

    def __init__(self, width: float, height: float, title: str):
        self.fig, self.ax = plt.subplots(figsize=(0.6 * width, 0.6 * height))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_aspect("equal")
        self.ax.axis("off")
        self.ax.set_title(title, fontsize=11)
        self.boxes: dict[str, FancyBboxPatch] = {}

    def box(self, key: str, x: float, y: float, text: str, kind: str = "conv", w: float = 2.0,
            h: float = 0.8, removed: bool = False) -> None:
        """A rounded box centred at (x, y); ``removed`` draws it dashed and grey (an ablation)."""
        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05,rounding_size=0.12",
                               facecolor="white" if removed else COLOURS[kind],
                               edgecolor="#999999" if removed else "#333333",
                               linestyle="--" if removed else "-", linewidth=1.0)
        self.ax.add_patch(patch)
        self.ax.text(x, y, text, ha="center", va="center", fontsize=8,
                     color="#999999" if removed else "black")
        self.boxes[key] = patch

    def circle(self, key: str, x: float, y: float, symbol: str) -> None:
        """A small node for a sum (+) or a product (x)."""
        self.box(key, x, y, symbol, kind="op", w=0.5, h=0.5)

    def arrow(self, a: str, b: str, text: str = "", removed: bool = False, bend: float = 0.0,
              colour: str = "#333333") -> None:
        """An arrow from box ``a`` to box ``b`` (clipped at their edges), with an optional label."""
        pa, pb = self.boxes[a], self.boxes[b]
        ca, cb = _centre(pa), _centre(pb)
        self.ax.annotate("", xy=cb, xytext=ca, arrowprops=dict(
            arrowstyle="-|>", patchA=pa, patchB=pb, shrinkA=2, shrinkB=2, linewidth=1.0,
            color="#aaaaaa" if removed else colour, linestyle="--" if removed else "-",
            connectionstyle=f"arc3,rad={bend}"))
        if text:
            # The label sits beside the curve's midpoint (arc3's quadratic Bezier), on its left.
            dx, dy = cb[0] - ca[0], cb[1] - ca[1]
            norm = max((dx * dx + dy * dy) ** 0.5, 1e-9)
            mx = (ca[0] + cb[0]) / 2 + 0.5 * bend * dy - 0.28 * dy / norm
            my = (ca[1] + cb[1]) / 2 - 0.5 * bend * dx + 0.28 * dx / norm
            self.ax.text(mx, my, text, ha="center", va="center", fontsize=7,
                         color="#999999" if removed else "#222222")

    def note(self, x: float, y: float, text: str, size: int = 7) -> None:
        self.ax.text(x, y, text, ha="center", va="center", fontsize=size, style="italic", color="#444444")

    def done(self):
        self.fig.tight_layout()
        return self.fig


def _centre(p: FancyBboxPatch) -> tuple[float, float]:
    return p.get_x() + p.get_width() / 2, p.get_y() + p.get_height() / 2


def _conv_text(conv, name: str = "conv") -> str:
    k = conv.kernel_size[0]
    return f"{name}{k}x{k}\n{conv.in_channels}->{conv.out_channels}"


def _trunk_text(body) -> str:
    groups = len(body.groups)
    blocks = len(body.groups[0].blocks)
    c = body.conv.in_channels
    return f"trunk: {groups} groups\nx {blocks} RCAB, {c} ch"


def rcab_figure(body):
    """The RCAB with its channel attention (top) and the residual-in-residual trunk (bottom).

    Args:
        body: a :class:`cisr_lib.models.backbone.Backbone` (``model.arm.body``).
    """
    block = body.groups[0].blocks[0]
    c = block.conv1.in_channels
    hidden = block.attention.squeeze.out_channels
    groups, blocks = len(body.groups), len(body.groups[0].blocks)
    cv = Canvas(17, 8.2, f"RCAB and the trunk: {groups} residual groups x {blocks} RCAB, {c} features")
    y1, y2, y3 = 6.6, 4.9, 2.0
    cv.box("f", 1.2, y1, f"f\n(B,{c},H,W)", "trunk", w=1.6)
    cv.box("c1", 3.6, y1, _conv_text(block.conv1))
    cv.box("relu", 5.6, y1, "ReLU", "op", w=1.2)
    cv.box("c2", 7.6, y1, _conv_text(block.conv2))
    cv.box("gap", 7.6, y2, "global\navg pool", "op", w=1.5)
    cv.box("sq", 9.6, y2, _conv_text(block.attention.squeeze), "conv", w=1.6)
    cv.box("relu2", 11.3, y2, "ReLU", "op", w=1.0)
    cv.box("ex", 13.0, y2, _conv_text(block.attention.excite), "conv", w=1.6)
    cv.box("sig", 14.8, y2, "sigmoid\n(B,%d,1,1)" % c, "op", w=1.5)
    cv.circle("mul", 14.8, y1, "x")
    cv.circle("add", 16.2, y1, "+")
    for a, b in (("f", "c1"), ("c1", "relu"), ("relu", "c2"), ("c2", "mul"), ("c2", "gap"), ("gap", "sq"),
                 ("sq", "relu2"), ("relu2", "ex"), ("ex", "sig"), ("sig", "mul"), ("mul", "add")):
        cv.arrow(a, b)
    cv.arrow("f", "add", "identity", bend=-0.08)
    cv.note(11.2, 3.95, f"channel attention: squeeze {c} -> {hidden} -> {c}, one gate per channel")
    # The trunk: groups of RCABs with a short skip each, and the trunk's own long skip.
    cv.box("tin", 1.2, y3, "head\nfeatures", "trunk", w=1.6)
    xs = [3.8 + 3.0 * i for i in range(min(groups, 3))]
    prev = "tin"
    for i, x in enumerate(xs):
        label = f"group {i + 1}" if i < 2 or groups == 3 else f"... group {groups}"
        cv.box(f"g{i}", x, y3, f"{label}\n{blocks} RCAB + conv\n+ short skip", "trunk", w=2.3, h=1.1)
        cv.arrow(prev, f"g{i}")
        prev = f"g{i}"
    cv.box("tconv", xs[-1] + 2.8, y3, _conv_text(body.conv), w=1.8)
    cv.circle("tadd", xs[-1] + 4.6, y3, "+")
    cv.arrow(prev, "tconv")
    cv.arrow("tconv", "tadd")
    cv.arrow("tin", "tadd", "long skip of the trunk", bend=0.18)
    return cv.done()


def nonlocal_figure(module):
    """The guided non-local operator of a module: d(z), the h network and eqs. (9)-(10) (Fig. 3).

    Args:
        module: ARM or REM (``model.arm``) whose operator is drawn; its guide is g.
    """
    op = module.nonlocal_op
    if op is None:
        raise ValueError("this module has no non-local operator (an ablation removed it)")
    p = op.patch
    search = "the whole image" if op.window is None else f"a {2 * op.window + 1}x{2 * op.window + 1} window"
    cv = Canvas(17, 7.6, f"The guided non-local operator u = NL(z; g, d(z)) (eqs. 9-10): {p}x{p} patches, "
                         f"search over {search}")
    yh, yw, yd = 6.2, 3.9, 1.3
    cv.box("g", 1.2, yw, "guide g\n(B,3,H,W)", "aux", w=1.7)
    cv.box("z", 1.2, yd, "z\n(B,3,H,W)", "input", w=1.7)
    if op.h_net is None:
        cv.box("h", 9.6, yh, "h = 30 / 255\neverywhere", "nonlocal", w=2.2)
        cv.arrow("g", "h")
    else:
        c1, c2 = op.h_net[0], op.h_net[2]
        cv.box("hc1", 3.8, yh, _conv_text(c1), w=1.8)
        cv.box("hr", 5.6, yh, "ReLU", "op", w=1.0)
        cv.box("hc2", 7.3, yh, _conv_text(c2), w=1.8)
        cv.box("h", 9.6, yh, "h(m) = softplus(.)\n+ 1/255", "nonlocal", w=2.2)
        for a, b in (("g", "hc1"), ("hc1", "hr"), ("hr", "hc2"), ("hc2", "h")):
            cv.arrow(a, b)
    cv.box("dist", 5.0, yw, f"patch distances\n||g(m) - g(n)||^2\n({p}x{p} patches, RGB)", "nonlocal", w=2.6,
           h=1.1)
    cv.box("d", 5.0, yd, "blocking detector d(z):\ngrid phase, boundary\nsteps (0 = blocking)", "op", w=2.8,
           h=1.1)
    cv.box("w", 9.6, yw, "(10) w(m,n) = exp(-dist / h(m)^2)\n x d(z(n)) / N,\nN: each row sums to 1",
           "nonlocal", w=4.2, h=1.2)
    cv.box("sum", 13.6, yd, "(9) u(m) =\nsum_n w(m,n) z(n)", "nonlocal", w=2.4, h=1.0)
    cv.box("u", 16.0, yw, "u\n(B,3,H,W)", "nonlocal", w=1.5)
    cv.arrow("g", "dist")
    cv.arrow("z", "d")
    cv.arrow("dist", "w")
    cv.arrow("h", "w")
    cv.arrow("d", "w", "d(z(n))")
    cv.arrow("w", "sum", "weights")
    cv.arrow("z", "sum", "candidates z(n), unprocessed", bend=0.22)
    cv.arrow("sum", "u")
    return cv.done()


def module_figure(module):
    """One module, ARM (eq. 7, Fig. 2(a)) or REM (eq. 8, Fig. 2(b)), drawn from its layers.

    Args:
        module: ``model.arm`` or ``model.rem`` of a PSI model (any ablation of it).
    """
    is_arm = hasattr(module, "aux_streams")
    s = module.scale
    has = set(module.images)
    up_stages = [] if is_arm else [m for m in module.upsample if hasattr(m, "upscale_factor")]
    width = 20.0 + (2.6 if up_stages else 0)
    name = "ARM: y = P(x, z) (eq. 7, Fig. 2(a))" if is_arm else "REM: x = R(y, z) (eq. 8, Fig. 2(b))"
    cv = Canvas(width, 9.0, f"{name}, x{s}")
    ya, ym, yz, ys = 7.7, 5.4, 3.1, 1.0
    aux = "x (B,3,%dH,%dW)" % (s, s) if is_arm else "y (B,3,H,W)"
    cv.box("aux", 1.3, ya, f"auxiliary\n{aux}", "aux", w=2.2, removed=not module.use_aux)
    cv.box("z", 1.3, yz, "z\n(B,3,H,W)", "input", w=2.2, removed=not module.use_input)
    gsrc = "aux"
    if is_arm:
        o = s // 2
        text = f"space-to-depth {s}x{s}:\ng = copy ({o},{o}) (our\nreading), {s * s - 1} others"
        if module.aux_conv is not None:  # the official code's variant (docs/model.md)
            c = module.aux_conv
            text = f"g = bicubic down x{s};\n'copies': strided conv\n{c.in_channels}->{c.out_channels}, stride {s}"
        cv.box("s2d", 4.6, ya, text, "aux", w=2.6, h=1.1, removed=not module.use_aux)
        cv.arrow("aux", "s2d", removed=not module.use_aux)
        gsrc = "s2d"
    cv.box("nl", 4.6, ym, "non-local\nu = NL(z; g, d(z))", "nonlocal", w=2.6, h=0.9, removed="u" not in has)
    cv.arrow(gsrc, "nl", "g", removed="g" not in has)
    cv.arrow("z", "nl", "z", removed="u" not in has or not module.use_input)
    head = module.head
    names = [k for k in "zgu" if k in has] + (["copies"] if is_arm and module.use_aux else [])
    cv.box("cat", 8.2, ym, f"concat [{', '.join(names)}]\n{head.in_channels} channels", "op", w=2.6, h=1.0)
    sources = {"z": "z", "g": gsrc, "u": "nl"}
    for k in "zgu":
        if k in has:
            cv.arrow(sources[k], "cat", "g + copies" if k == "g" and is_arm and module.use_aux else k)
    x = 11.1
    cv.box("head", x, ym, _conv_text(head, "head conv"), w=2.0)
    cv.box("body", x + 2.7, ym, _trunk_text(module.body), "trunk", w=2.6, h=1.1)
    cv.arrow("cat", "head")
    cv.arrow("head", "body")
    last, x = "body", x + 2.7
    if up_stages:
        x += 2.7
        cv.box("up", x, ym, f"up-sampler x{s}:\n{len(up_stages)} x (conv3x3 +\npixel shuffle)", "trunk", w=2.4,
               h=1.1)
        cv.arrow(last, "up")
        last = "up"
    x += 2.6
    cv.box("tail", x, ym, _conv_text(module.tail, "tail conv"), w=2.0)
    cv.arrow(last, "tail")
    out = "y (B,3,H,W)" if is_arm else "x (B,3,%dH,%dW)" % (s, s)
    cv.circle("add", x + 1.7, ym, "+")
    cv.box("out", x + 1.7, ya, out, "output", w=2.2)
    skip = module.skip
    if skip.mode == "none":
        cv.arrow("tail", "add")
        cv.note(10.0, ys, "long skip removed (Table III)")
    else:
        comb = skip.combine
        if skip.mode == "adaptive" and comb is not None and comb.net is not None:
            c0, c2 = comb.net[0], comb.net[2]
            text = (f"(11) adaptive combination v = sum_i t_i * ({', '.join(skip.available)}),\n"
                    f"t from 1x1 convs {c0.in_channels}->{c0.out_channels}->{c2.out_channels} + ReLU, softmax per pixel")
        elif skip.mode == "adaptive":
            text = f"v = {skip.available[0]} (one source left)"
        else:
            text = f"v = {skip.mode} (a fixed skip, Table III)"
        cv.box("comb", 9.6, ys, text, "combine", w=6.4, h=1.0)
        bends = {"z": 0.1, "g": 0.25, "u": 0.2}
        for k in "zgu":
            if k in skip.available and (skip.mode == "adaptive" or skip.mode == k):
                cv.arrow(sources[k], "comb", bend=bends[k])
        src = "comb"
        if not is_arm:
            cv.box("bic", x - 1.0, ys, f"bicubic x{s}\n(MATLAB)", "op", w=1.8)
            cv.arrow("comb", "bic", "v")
            src = "bic"
        cv.arrow(src, "add", "v" if is_arm else "")
        cv.arrow("tail", "add")
    cv.arrow("add", "out")
    return cv.done()


def psi_figure(model, steps: int | None = None):
    """The unfolded PSI model with its four input streams (Fig. 1(c), Fig. 2, Sec. III-C).

    Args:
        model: a :class:`cisr_lib.models.psi.PSINet` (any ablation).
        steps: unfolding steps to draw (default: the model's J; at most 4 are drawn, then "...").
    """
    if not hasattr(model, "arm") or not hasattr(model, "rem"):
        raise TypeError("psi_figure draws a PSI model (ARM + REM); the other frameworks have no ARM/REM pair")
    steps = model.steps if steps is None else steps
    rho = model.config.get("rho", ())
    gamma = model.config.get("gamma", 1.0)
    shown = list(range(1, steps + 1)) if steps <= 4 else [1, 2, steps]
    width = 3.2 + 5.4 * len(shown) + (1.2 if steps > 4 else 0)
    cv = Canvas(width, 7.0, f"CISR-PSI x{model.scale}: ARM and REM unfolded J = {steps} times with shared "
                            f"weights; loss (12) with gamma = {gamma:g}")
    yz, ym, yl = 5.8, 3.4, 1.2
    arm, rem = model.arm, model.rem
    cv.box("x0", 1.4, ym, "x_0 = bicubic(z)", "aux", w=2.2)
    cv.box("zsrc", 1.4, yz, "z (compressed LR)", "input", w=2.2)
    cv.arrow("zsrc", "x0")
    prev, x = "x0", 4.4
    for n, j in enumerate(shown):
        if steps > 4 and n == len(shown) - 1:
            cv.note(x - 0.6, ym, "...", size=12)
            x += 1.2
        a, r = f"arm{j}", f"rem{j}"
        cv.box(a, x, ym, f"ARM\ny_{j} = P(x_{j - 1}, z)", "trunk", w=2.2, h=1.0)
        cv.box(r, x + 2.7, ym, f"REM\nx_{j} = R(y_{j}, z)", "trunk", w=2.2, h=1.0)
        cv.box(f"z{j}", x + 1.35, yz, "z", "input", w=0.8, h=0.6)
        cv.arrow(f"z{j}", a, "I-CI" if n == 0 else "", removed=not arm.use_input, colour="#3d85c6")
        cv.arrow(f"z{j}", r, "II-CI" if n == 0 else "", removed=not rem.use_input, colour="#3d85c6")
        cv.arrow(prev, a, "I-AI" if n == 0 else f"x_{j - 1}", removed=not arm.use_aux, colour="#e69138")
        cv.arrow(a, r, "II-AI" if n == 0 else f"y_{j}", removed=not rem.use_aux, colour="#e69138")
        w = f"{rho[j - 1]:g}" if len(rho) >= j else "?"
        cv.box(f"l{j}", x + 1.35, yl, f"rho_{j} = {w}:\n||y_{j} - y|| + gamma ||x_{j} - x||", "combine",
               w=4.2, h=0.9)
        cv.arrow(a, f"l{j}")
        cv.arrow(r, f"l{j}")
        prev, x = r, x + 5.4
    cv.note(width / 2, 6.6, "blue: the compressed input z (parallel streams I-CI, II-CI); orange: the other "
                            "module's estimate (series streams I-AI, II-AI); dashed: removed")
    return cv.done()
