"""The architecture figures state the sizes of the model they are given (cisr_lib.diagrams)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from cisr_lib import diagrams  # noqa: E402
from cisr_lib.models import build_model  # noqa: E402

GREY = "#999999"


def texts(fig):
    """The title and every label of a figure."""
    return [fig.axes[0].get_title()] + [t.get_text() for t in fig.axes[0].texts]


def joined(fig):
    return "\n".join(texts(fig))


def dashed_arrows(fig):
    """Arrows drawn dashed (a removed stream)."""
    n = 0
    for t in fig.axes[0].texts:
        patch = getattr(t, "arrow_patch", None)
        if patch is not None and patch.get_linestyle() not in ("-", "solid"):
            n += 1
    return n


def removed_labels(fig):
    return [t.get_text() for t in fig.axes[0].texts if matplotlib.colors.to_hex(t.get_color()) == GREY]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("feats,reduction", [(32, 16), (16, 4)])
def test_rcab_figure_reads_widths_from_the_model(feats, reduction):
    m = build_model("micro", 2, n_feats=feats, reduction=reduction)
    text = joined(diagrams.rcab_figure(m.arm.body))
    hidden = feats // reduction  # RCAN's squeeze C -> C / r
    assert f"conv3x3\n{feats}->{feats}" in text
    assert f"conv1x1\n{feats}->{hidden}" in text and f"conv1x1\n{hidden}->{feats}" in text
    assert "2 residual groups x 3 RCAB" in text


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_arm_figure_counts_the_concatenated_channels(scale):
    m = build_model("micro", scale)
    text = joined(diagrams.module_figure(m.arm))
    expected = 3 * 3 + 3 * (scale * scale - 1)  # z, g, u and the s^2 - 1 other copies (Sec. III-B)
    assert f"{expected} channels" in text
    assert f"head conv3x3\n{expected}->32" in text
    assert f"g = copy ({scale // 2},{scale // 2})" in text  # k = round((s + 1) / 2), 0-based per axis
    assert "(11) adaptive combination" in text and "9->64->3" in text


@pytest.mark.parametrize("scale,stages", [(2, 1), (3, 1), (4, 2)])
def test_rem_figure_shows_the_upsampler_stages(scale, stages):
    m = build_model("micro", scale)
    text = joined(diagrams.module_figure(m.rem))
    assert f"{stages} x (conv3x3" in text
    assert f"bicubic x{scale}" in text
    assert "9 channels" in text  # [z, y, u]


def test_removed_streams_are_drawn_dashed_and_grey():
    full = build_model("micro", 2)
    cut = build_model("micro", 2, ablation="no_arm_aux")
    assert removed_labels(diagrams.module_figure(full.arm)) == []
    greyed = removed_labels(diagrams.module_figure(cut.arm))
    assert any(t.startswith("auxiliary") for t in greyed) and any(t.startswith("non-local") for t in greyed)
    assert "3 channels" in joined(diagrams.module_figure(cut.arm))  # [z] alone
    assert dashed_arrows(diagrams.psi_figure(full)) == 0
    # I-AI is removed at every drawn step (3 of micro's J = 3).
    assert dashed_arrows(diagrams.psi_figure(cut)) == 3


def test_official_variant_draws_the_strided_conv():
    m = build_model("micro", 2, variant="official")
    assert "strided conv\n3->12, stride 2" in joined(diagrams.module_figure(m.arm))


def test_skip_modes_are_labelled():
    assert "long skip removed" in joined(diagrams.module_figure(build_model("micro", 2, skip="none").arm))
    assert "v = z (a fixed skip" in joined(diagrams.module_figure(build_model("micro", 2, skip="z").rem))


def test_psi_figure_states_j_and_rho():
    micro = joined(diagrams.psi_figure(build_model("micro", 2)))
    assert "J = 3" in micro and "rho_1 = 0.3" in micro and "rho_3 = 1" in micro
    tiny = diagrams.psi_figure(build_model("tiny", 3))
    assert "J = 5" in joined(tiny) and "..." in texts(tiny)
    assert "rho_5 = 1" in joined(tiny) and "rho_3" not in joined(tiny)  # steps 1, 2 and J drawn


def test_nonlocal_figure_follows_the_operator():
    m = build_model("micro", 2, window=3)
    text = joined(diagrams.nonlocal_figure(m.arm))
    assert "a 7x7 window" in text and "conv3x3\n3->64" in text and "conv1x1\n64->1" in text
    assert "h = 30 / 255" in joined(diagrams.nonlocal_figure(build_model("micro", 2,
                                                                             ablation="traditional_nonlocal").rem))
    with pytest.raises(ValueError, match="no non-local operator"):
        diagrams.nonlocal_figure(build_model("micro", 2, ablation="no_nonlocal").arm)


def test_psi_figure_refuses_other_frameworks():
    with pytest.raises(TypeError, match="PSI model"):
        diagrams.psi_figure(build_model("micro", 2, variant="plain"))
