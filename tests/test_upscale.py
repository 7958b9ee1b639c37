"""Tests of cisr_lib/inference.py: ``upscale`` (sizes, tiles, grey, alpha) and ``cisr upscale``.

The module is ``inference.py`` (see its docstring for why not ``upscale.py``); this file is named
after the feature. Models are micro networks with 8 features, one block and J = 1 or 2, so every
test runs in well under a second on the CPU except the one with the shipped tiny x2 weights.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cisr_lib
from cisr_lib import inference
from cisr_lib.checkpoint import CheckpointError, save_checkpoint
from cisr_lib.cli import main
from cisr_lib.convert import tensor2uint, uint2tensor4
from cisr_lib.data import embedded_images
from cisr_lib.degradations import compress_with_bitstream, imresize
from cisr_lib.inference import upscale
from cisr_lib.tiling import axis_weights, tile_mask, tile_starts
from cisr_lib.metrics import psnr
from cisr_lib.models import build_model
from cisr_lib.models.backbone import ChannelAttention
from cisr_lib.models.blocking import blocking_mask, estimate_grid_phase
from cisr_lib.models.nonlocal_op import NonLocal
from cisr_lib.pretrained import FORMAT

CPU = torch.device("cpu")


def _micro(scale, steps=1, seed=0, **kw):
    torch.manual_seed(seed)
    return build_model("micro", scale, n_feats=8, n_groups=1, n_blocks=1, steps=steps, **kw)


def _save_weights(path, model):
    """A weights file in the format of cisr_lib/pretrained.py (what export_weights writes)."""
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.items()}
    save_checkpoint(path, {"format": FORMAT, "model_config": cfg, "state_dict": model.state_dict(), "meta": {}})
    return path


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and a busy second core makes every parallel region
    wait for it (measured 28 s instead of 0.3 s for one 95x94 image on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """scale -> weights file of a micro model (random initialisation, seed 0)."""
    d = tmp_path_factory.mktemp("weights")
    return {s: _save_weights(d / f"micro_x{s}.pt", _micro(s)) for s in (2, 3, 4)}


@pytest.fixture(scope="module")
def jpeg_lr():
    """An 89x90 JPEG q10 LR image whose coding grid starts at row 1, column 2 (a cropped JPEG)."""
    photo = next(iter(embedded_images().values()))
    lr = imresize(photo[100:292, 100:292], 0.5)  # 96x96 clean LR
    z, _ = compress_with_bitstream(lr, "jpeg", 10)
    return np.ascontiguousarray(z[7:, 6:])  # blocks now start at row 1, column 2


class Nearest(nn.Module):
    """A stand-in with no spatial context: nearest-neighbour up-sampling (each HR pixel = one LR pixel)."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.register_buffer("unused", torch.zeros(1))

    def forward(self, z, steps=None):
        x = torch.repeat_interleave(torch.repeat_interleave(z, self.scale, dim=2), self.scale, dim=3)
        return [z], [x]


# Tile geometry and blending weights.


@pytest.mark.parametrize("size,tile,overlap", [(17, 10, 4), (100, 40, 10), (75, 40, 10), (5, 10, 4),
                                               (64, 64, 16), (65, 64, 16), (300, 32, 0), (7, 1, 0)])
def test_tile_starts_cover_the_axis_with_full_tiles(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] == max(0, size - tile)  # the last tile ends at the border, no clipped tile
    gaps = np.diff(starts)
    assert np.all(gaps > 0) and np.all(gaps <= tile - overlap)  # overlap at least `overlap`
    covered = np.zeros(size, bool)
    for a in starts:
        covered[a: a + tile] = True
    assert covered.all()


@pytest.mark.parametrize("size,tile,overlap,scale", [(17, 10, 4, 2), (75, 40, 10, 3), (300, 32, 16, 4), (50, 20, 0, 2)])
def test_axis_weights_are_a_smooth_partition_of_unity(size, tile, overlap, scale):
    starts = tile_starts(size, tile, overlap)
    ws = axis_weights(starts, tile, scale, overlap)
    total = np.zeros(size * scale)
    for a, w in zip(starts, ws):
        assert w.shape == (tile * scale,) and np.all(w > 0)
        total[a * scale: (a + tile) * scale] += w
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)
    if overlap and len(starts) > 1:
        first = ws[0]
        assert first[0] == 1.0  # the image border is not faded
        assert first[-1] < 0.01  # the tile border is: its outermost HR pixel weighs < 1 %
        assert np.all(np.diff(first[-overlap * scale:]) < 0)  # and the fade is monotone


# Shapes, sizes and agreement with the network itself.


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (5, 7), (13, 6)])
def test_any_size_gives_scaled_shape_and_the_network_output(weights, scale, hw):
    img = _rgb(*hw, seed=scale)
    out = upscale(img, scale, weights=weights[scale], device="cpu", window=None)  # the model's own search
    assert out.shape == (hw[0] * scale, hw[1] * scale, 3) and out.dtype == np.uint8
    model = _micro(scale).eval()  # the same weights (seed 0), called directly: no padding, no crop
    with torch.no_grad():
        ref = tensor2uint(model(uint2tensor4(img))[1][-1])
    np.testing.assert_array_equal(out, ref)


def test_steps_and_window_reach_the_network(weights):
    img = _rgb(12, 10)
    model = _micro(3, steps=2).eval()
    with torch.no_grad():
        one = tensor2uint(model(uint2tensor4(img), steps=1)[1][-1])
        two = tensor2uint(model(uint2tensor4(img))[1][-1])
    assert not np.array_equal(one, two)
    np.testing.assert_array_equal(upscale(img, 3, weights=model, steps=1, window=None), one)
    np.testing.assert_array_equal(upscale(img, 3, weights=model, window=None), two)
    windowed = _micro(3, steps=2, window=1).eval()
    windowed.load_state_dict(model.state_dict())
    with torch.no_grad():
        ref = tensor2uint(windowed(uint2tensor4(img))[1][-1])
    np.testing.assert_array_equal(upscale(img, 3, weights=model, window=1), ref)
    assert not np.array_equal(ref, two)


def test_a_module_gets_its_mode_and_window_back():
    model = _micro(2).train()
    upscale(_rgb(6, 6), 2, weights=model, window=3)
    assert model.training
    assert all(m.window is None for m in model.modules() if isinstance(m, NonLocal))


# Tiles.


@pytest.mark.parametrize("scale,hw,tile,overlap", [(2, (37, 29), 10, 4), (3, (17, 17), 10, 4),
                                                   (4, (20, 33), 8, 0), (2, (40, 40), 16, 8)])
def test_tiles_blend_to_the_whole_image_for_a_pointwise_model(scale, hw, tile, overlap):
    img = _rgb(*hw, seed=1)
    model = Nearest(scale)
    whole = upscale(img, scale, weights=model)
    np.testing.assert_array_equal(whole, np.repeat(np.repeat(img, scale, 0), scale, 1))
    np.testing.assert_array_equal(upscale(img, scale, weights=model, tile=tile, tile_overlap=overlap), whole)
    gray = img[:, :, 1]
    np.testing.assert_array_equal(upscale(gray, scale, weights=model, tile=tile, tile_overlap=overlap), whole[:, :, 1])


def test_tile_masks_equal_the_whole_image_mask(jpeg_lr):
    z = uint2tensor4(jpeg_lr)
    phase = estimate_grid_phase(z)
    assert (int(phase.row), int(phase.col)) == (1, 2) and phase.row_conf >= 2 and phase.col_conf >= 2
    whole = blocking_mask(z, 3)
    assert 0.05 < (whole == 0).float().mean() < 0.9  # the grid is found and the mask is not trivial
    h, w = jpeg_lr.shape[:2]
    for rows, cols in [((0, 24), (0, 24)), ((13, 37), (29, 53)), ((h - 24, h), (w - 24, w)), ((0, h), (0, w))]:
        zt, mt = tile_mask(jpeg_lr, rows, cols, phase, 3, CPU)
        assert torch.equal(zt, z[..., rows[0]:rows[1], cols[0]:cols[1]])
        assert torch.equal(mt, whole[..., rows[0]:rows[1], cols[0]:cols[1]])
    # A 24x24 tile alone does not see the grid as the whole image does (why the phase is global).
    alone = blocking_mask(z[..., 13:37, 29:53], 3)
    assert not torch.equal(alone, whole[..., 13:37, 29:53])


def _tiled_and_whole(img, scale, **kw):
    model = _micro(scale, steps=2)
    whole = upscale(img, scale, weights=model, window=2).astype(int)
    tiled = upscale(img, scale, weights=model, window=2, **kw).astype(int)
    return tiled, whole


@pytest.mark.parametrize("scale", [2, 3])
def test_tiles_equal_the_whole_image_inside_without_channel_attention(jpeg_lr, scale, monkeypatch):
    # Channel attention pools over the whole input, so only without it is every operator local
    # (the non-local search is bounded by window=2); then a pixel farther from its tile's inner
    # borders than the receptive field (about 13 LR pixels at J = 2; 18 + 13 < 64) is computed exactly.
    # "Exactly" is up to float32 rounding: convolutions on different sizes sum in different orders
    # (about 1e-7), which moves a value across a rounding boundary now and then (measured: 0 or 1
    # value in 3888 per corner).
    monkeypatch.setattr(ChannelAttention, "forward", lambda self, f: f)
    tiled, whole = _tiled_and_whole(jpeg_lr, scale, tile=64, tile_overlap=32)  # tiles start at 0 and 25 / 26
    assert tiled.shape == (89 * scale, 90 * scale, 3)
    c = 18 * scale
    for corner in [np.s_[:c, :c], np.s_[-c:, -c:], np.s_[:c, -c:], np.s_[-c:, :c]]:  # one tile each
        d = np.abs(tiled[corner] - whole[corner])
        assert d.max() <= 1 and np.count_nonzero(d) <= 3, np.count_nonzero(d)
    assert np.abs(tiled - whole).max() <= 1  # the blended overlaps too


def test_tiles_are_close_to_the_whole_image_with_channel_attention(jpeg_lr):
    tiled, whole = _tiled_and_whole(jpeg_lr, 2, tile=64, tile_overlap=32)
    d = np.abs(tiled - whole)
    assert d.max() <= 1 and d.mean() < 0.02  # measured: max 1, mean 0.009
    # Smaller tiles and overlaps: the tile statistics and the borders matter more; blending keeps
    # the error below the one of abutting tiles cut at the same places.
    hard, _ = _tiled_and_whole(jpeg_lr, 2, tile=32, tile_overlap=0)
    soft, _ = _tiled_and_whole(jpeg_lr, 2, tile=32, tile_overlap=8)
    d_hard, d_soft = np.abs(hard - whole), np.abs(soft - whole)
    assert d_soft.max() < d_hard.max() and d_soft.mean() < d_hard.mean()


# Grey and alpha.


def test_gray_in_gray_out_is_the_channel_mean(weights):
    g = _rgb(9, 11)[:, :, 0]
    rgb_out = upscale(np.dstack([g, g, g]), 2, weights=weights[2]).astype(float)
    assert np.abs(rgb_out[:, :, 0] - rgb_out[:, :, 2]).max() > 2  # the network itself does not return grey
    out = upscale(g, 2, weights=weights[2])
    assert out.shape == (18, 22) and out.dtype == np.uint8
    assert np.abs(out - rgb_out.mean(axis=2)).max() <= 1  # the mean rounded once vs three times
    np.testing.assert_array_equal(upscale(g[:, :, None], 2, weights=weights[2]), out[:, :, None])


@pytest.mark.parametrize("channels", [4, 2])
def test_alpha_is_upscaled_by_matlab_bicubic(weights, channels):
    rng = np.random.default_rng(3)
    colour = _rgb(8, 10, seed=3)[:, :, : channels - 1]
    alpha = rng.integers(0, 256, (8, 10), dtype=np.uint8)
    out = upscale(np.dstack([colour, alpha]), 3, weights=weights[3])
    assert out.shape == (24, 30, channels)
    np.testing.assert_array_equal(out[:, :, -1], imresize(alpha, 3))
    np.testing.assert_array_equal(out[:, :, :-1].squeeze(-1) if channels == 2 else out[:, :, :3],
                                  upscale(colour.squeeze(-1) if channels == 2 else colour, 3, weights=weights[3]))


# Errors of the function.


@pytest.mark.parametrize("image,kw,err", [
    (np.zeros((0, 5, 3), np.uint8), {}, ValueError),
    (np.zeros((5, 0), np.uint8), {}, ValueError),
    (np.zeros((4, 4, 5), np.uint8), {}, ValueError),
    (np.zeros((4, 4, 3), np.float32), {}, TypeError),
    (np.zeros((4, 4, 3), np.uint8), {"tile": 0}, ValueError),
    (np.zeros((4, 4, 3), np.uint8), {"tile": 16, "tile_overlap": 9}, ValueError),
    (np.zeros((4, 4, 3), np.uint8), {"steps": 0}, ValueError),
    (np.zeros((4, 4, 3), np.uint8), {"window": 0}, ValueError),
    (np.zeros((4, 4, 3), np.uint8), {"device": "gpu"}, ValueError),
])
def test_bad_arguments_raise(weights, image, kw, err):
    with pytest.raises(err):
        upscale(image, 2, weights=weights[2], **kw)


def test_a_model_for_another_scale_is_refused(weights):
    with pytest.raises(ValueError, match="up-scales by 3"):
        upscale(_rgb(4, 4), 2, weights=_micro(3))
    with pytest.raises(CheckpointError, match="x3"):
        upscale(_rgb(4, 4), 2, weights=weights[3])


# The shipped weights and the package attribute.


def test_shipped_tiny_x2_weights_run_on_16x16_and_beat_bicubic():
    photo = next(iter(embedded_images().values()))
    hr = photo[100:132, 100:132]
    z, _ = compress_with_bitstream(imresize(hr, 0.5), "jpeg", 10)  # 16x16
    out = cisr_lib.upscale(z, 2, weights="tiny")  # cisr_lib/weights/tiny_x2.pt
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert psnr(out, hr, 2) > psnr(imresize(z, 2), hr, 2) + 0.5  # measured 39.96 vs 38.08 dB


@pytest.mark.parametrize("s, margin", [(2, 0.2), (3, 0.1), (4, 0.1)])
def test_default_weights_are_the_shipped_micro_ones_and_beat_bicubic(s, margin):
    from cisr_lib.pretrained import default_weights

    assert default_weights(s).name == f"micro_x{s}.pt"
    hr = embedded_images()["astronaut"][96:96 + 48 * s, 96:96 + 48 * s]
    z, _ = compress_with_bitstream(imresize(hr, 1 / s), "jpeg", 20)  # 48x48 LR
    out = cisr_lib.upscale(z, s)
    assert out.shape == hr.shape
    assert psnr(out, hr, s) > psnr(imresize(z, s), hr, s) + margin  # measured +0.31 / +0.16 / +0.16 dB


def test_weights_by_shipped_model_name(monkeypatch):
    from cisr_lib import pretrained

    seen = []
    real = pretrained.load_model
    monkeypatch.setattr(pretrained, "load_model", lambda path, **kw: seen.append(path) or real(path, **kw))
    z = np.full((4, 4, 3), 128, np.uint8)
    assert cisr_lib.upscale(z, 2, weights="tiny").shape == (8, 8, 3)
    assert seen == [pretrained.WEIGHTS_DIR / "tiny_x2.pt"]


def test_package_attribute_is_lazy_and_is_the_function():
    code = ("import sys, cisr_lib; assert 'torch' not in sys.modules; "
            "import cisr_lib.inference as m; assert cisr_lib.upscale is m.upscale; "
            "from cisr_lib.cli import build_parser; build_parser(); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert cisr_lib.upscale is inference.upscale


# The command line.


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cisr upscale: error: ") and "Traceback" not in err
    return lines[0]


def _png(path, arr):
    Image.fromarray(arr).save(path)
    return path


def test_cli_single_file_matches_the_function_and_picks_the_format(tmp_path, weights, capsys):
    img = _rgb(10, 12)
    src = _png(tmp_path / "in.png", img)
    ref = upscale(img, 2, weights=weights[2])
    assert main(["upscale", str(src), str(tmp_path / "out.png"), "--scale", "2", "--weights", str(weights[2])]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), ref)
    assert "out.png (24x20)" in capsys.readouterr().out
    for ext, fmt in [(".jpg", "JPEG"), (".webp", "WEBP"), (".tif", "TIFF")]:
        dst = tmp_path / f"out{ext}"
        assert main(["upscale", str(src), str(dst), "--scale", "2", "--weights", str(weights[2])]) == 0
        with Image.open(tmp_path / f"out{ext}") as im:
            assert im.format == fmt and im.size == (24, 20)
    out_dir = tmp_path / "existing_dir"
    out_dir.mkdir()
    assert main(["upscale", str(src), str(out_dir), "--scale", "2", "--weights", str(weights[2]), "--ext", "bmp"]) == 0
    assert (out_dir / "in.bmp").is_file()


def test_cpu_defaults_are_tiles_and_the_search_window():
    img = _rgb(12, 10)
    model = _micro(2, steps=2)
    auto = upscale(img, 2, weights=model)
    assert inference.resolve_runtime("auto", "auto", CPU) == (inference.DEFAULT_TILE, inference.DEFAULT_WINDOW)
    assert inference.resolve_runtime("auto", "auto", torch.device("cuda")) == (inference.DEFAULT_TILE, None)
    assert inference.resolve_runtime(None, None, CPU) == (None, None)
    np.testing.assert_array_equal(auto, upscale(img, 2, weights=model, tile=inference.DEFAULT_TILE,
                                                window=inference.DEFAULT_WINDOW))
    assert not np.array_equal(auto, upscale(img, 2, weights=model, window=None))  # the whole-image search
    assert all(m.window is None for m in model.modules() if isinstance(m, NonLocal))  # given back
    assert all(p.is_contiguous() for p in model.parameters())  # channels_last only while running


def test_a_channels_last_module_stays_channels_last():
    model = _micro(2).to(memory_format=torch.channels_last)
    upscale(_rgb(6, 6), 2, weights=model, device="cpu")
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


def test_progress_bar_over_many_tiles(capsys):
    model = _micro(2)
    img = _rgb(40, 40)
    upscale(img, 2, weights=model, tile=8, tile_overlap=2, window=1)  # 36 tiles > PROGRESS_MIN_TILES
    assert "upscale" in capsys.readouterr().err
    upscale(img, 2, weights=model, tile=8, tile_overlap=2, window=1, progress=False)
    upscale(_rgb(10, 10), 2, weights=model, window=1)  # one tile: no bar
    assert capsys.readouterr().err == ""


def test_cli_window_0_is_the_models_own_search(tmp_path, weights):
    img = _rgb(12, 14)
    src = _png(tmp_path / "in.png", img)
    w2 = ["--scale", "2", "--weights", str(weights[2]), "--quiet"]
    assert main(["upscale", str(src), str(tmp_path / "own.png"), "--window", "0", *w2]) == 0
    assert main(["upscale", str(src), str(tmp_path / "auto.png"), *w2]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "own.png")), upscale(img, 2, weights=weights[2],
                                                                                        window=None))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "auto.png")), upscale(img, 2, weights=weights[2]))
    assert main(["upscale", str(src), str(tmp_path / "x.png"), "--window", "-1", *w2]) == 2
    assert main(["upscale", str(src), str(tmp_path / "x.png"), "--threads", "0", *w2]) == 2


def test_cli_tiles_by_default_and_tile_0_is_the_whole_image(tmp_path, weights):
    img = _rgb(40, 36)
    src = _png(tmp_path / "in.png", img)
    args = ["--scale", "3", "--weights", str(weights[3]), "--window", "2"]
    assert main(["upscale", str(src), str(tmp_path / "tiled.png"), "--tile", "16", "--tile-overlap", "4", *args]) == 0
    assert main(["upscale", str(src), str(tmp_path / "whole.png"), "--tile", "0", *args]) == 0
    assert main(["upscale", str(src), str(tmp_path / "default.png"), *args]) == 0  # 256 > 40: one tile
    whole = np.asarray(Image.open(tmp_path / "whole.png"))
    np.testing.assert_array_equal(whole, upscale(img, 3, weights=weights[3], window=2))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "default.png")), whole)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "tiled.png")),
                                  upscale(img, 3, weights=weights[3], window=2, tile=16, tile_overlap=4))


def test_cli_keeps_gray_alpha_and_reads_16_bit(tmp_path, weights, capsys):
    w2 = ["--scale", "2", "--weights", str(weights[2])]
    g = _rgb(7, 9)[:, :, 0]
    assert main(["upscale", str(_png(tmp_path / "g.png", g)), str(tmp_path / "g2.png"), *w2]) == 0
    with Image.open(tmp_path / "g2.png") as im:
        assert im.mode == "L" and im.size == (18, 14)
        np.testing.assert_array_equal(np.asarray(im), upscale(g, 2, weights=weights[2]))
    rgba = np.dstack([_rgb(7, 9), np.linspace(0, 255, 63).reshape(7, 9).astype(np.uint8)])
    assert main(["upscale", str(_png(tmp_path / "a.png", rgba)), str(tmp_path / "a2.webp"), *w2]) == 0
    with Image.open(tmp_path / "a2.webp") as im:
        assert im.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(im)[:, :, 3], imresize(rgba[:, :, 3], 2))
    la = np.dstack([g, rgba[:, :, 3]])
    assert main(["upscale", str(_png(tmp_path / "la.png", la)), str(tmp_path / "la2.png"), *w2]) == 0
    with Image.open(tmp_path / "la2.png") as im:
        assert im.mode == "LA"
    capsys.readouterr()
    assert main(["upscale", str(tmp_path / "a.png"), str(tmp_path / "a2.jpg"), *w2]) == 0
    assert "alpha dropped" in capsys.readouterr().err
    deep = (np.arange(63, dtype=np.uint16).reshape(7, 9) * 1000)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert main(["upscale", str(tmp_path / "deep.png"), str(tmp_path / "deep2.png"), *w2]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cisr upscale: warning: ") and "16-bit" in err[0]
    with Image.open(tmp_path / "deep2.png") as im:
        assert im.mode == "L" and im.size == (18, 14)


def _bad_case(case, tmp_path, weights):
    """(argv tail, input path) for one kind of bad input; a valid 8x8 PNG unless the case is about it."""
    src = _png(tmp_path / "in.png", _rgb(8, 8))
    args = ["--scale", "2", "--weights", str(weights[2])]
    if case == "missing":
        src = tmp_path / "nope.png"
    elif case == "corrupt":
        src.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    elif case == "truncated":
        data = src.read_bytes()
        src.write_bytes(data[: len(data) // 2])
    elif case == "empty":
        src.write_bytes(b"")
    elif case == "unsupported":
        src = tmp_path / "in.gif"
        Image.fromarray(_rgb(8, 8)).save(src)
    elif case == "wrong_scale":
        args[1] = "5"
    elif case == "no_shipped_weights":
        args = ["--scale", "3", "--weights", "tiny"]  # tiny ships for x2 only
    elif case == "checkpoint_other_scale":
        args[3] = str(weights[3])
    elif case == "checkpoint_other_model":
        torch.manual_seed(0)
        bigger = build_model("micro", 2, n_feats=8, n_groups=1, n_blocks=2, steps=1)
        cfg = _micro(2).config
        bad = tmp_path / "mismatch.pt"
        save_checkpoint(bad, {"format": FORMAT, "model_config": {k: list(v) if isinstance(v, tuple) else v
                                                                  for k, v in cfg.items()},
                              "state_dict": bigger.state_dict(), "meta": {}})
        args[3] = str(bad)
    elif case == "checkpoint_foreign":
        bad = tmp_path / "foreign.pt"
        torch.save({"weight": torch.zeros(3)}, bad)
        args[3] = str(bad)
    elif case == "checkpoint_corrupt":
        bad = tmp_path / "corrupt.pt"
        bad.write_bytes(b"PK\x03\x04 not a checkpoint")
        args[3] = str(bad)
    elif case == "checkpoint_missing":
        args[3] = str(tmp_path / "nope.pt")
    elif case == "bad_device":
        args += ["--device", "gpu"]
    elif case == "bad_tile":
        args += ["--tile", "16", "--tile-overlap", "12"]
    elif case == "bad_steps":
        args += ["--steps", "0"]
    return src, args


@pytest.mark.parametrize("case", ["missing", "corrupt", "truncated", "empty", "unsupported", "wrong_scale",
                                  "no_shipped_weights", "checkpoint_other_scale", "checkpoint_other_model",
                                  "checkpoint_foreign", "checkpoint_corrupt", "checkpoint_missing",
                                  "bad_device", "bad_tile", "bad_steps"])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, weights, capsys, case):
    src, args = _bad_case(case, tmp_path, weights)
    dst = tmp_path / "out" / "up.png"
    assert main(["upscale", str(src), str(dst), *args]) == 2
    line = _one_error_line(capsys)
    assert not dst.exists() and not dst.parent.exists()
    if case.startswith("checkpoint") or case == "no_shipped_weights":
        assert "checkpoint" in line or "weights" in line or ".pt" in line


def test_cli_unknown_extension_is_refused_before_any_work(tmp_path, capsys):
    src = _png(tmp_path / "in.png", _rgb(8, 8))
    rc = main(["upscale", str(src), str(tmp_path / "out.xyz"), "--scale", "2", "--weights", str(tmp_path / "nope.pt")])
    assert rc == 2 and "unknown extension '.xyz'" in _one_error_line(capsys)  # not the missing weights
    assert not (tmp_path / "out.xyz").exists()


def test_cli_never_overwrites_without_the_flag(tmp_path, weights, capsys):
    src = _png(tmp_path / "in.png", _rgb(8, 8))
    dst = tmp_path / "out.png"
    dst.write_bytes(b"keep me")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"junk")
    # The existing output is reported before the (corrupt) weights are even opened.
    assert main(["upscale", str(src), str(dst), "--scale", "2", "--weights", str(corrupt)]) == 2
    assert "--overwrite" in _one_error_line(capsys)
    assert dst.read_bytes() == b"keep me"
    assert main(["upscale", str(src), str(dst), "--scale", "2", "--weights", str(weights[2]), "--overwrite"]) == 0
    assert np.asarray(Image.open(dst)).shape == (16, 16, 3)


def test_cli_folder(tmp_path, weights, capsys):
    src = tmp_path / "lr"
    src.mkdir()
    _png(src / "a.png", _rgb(6, 8))
    _png(src / "b.jpg", _rgb(5, 5)[:, :, 0])
    (src / "notes.txt").write_text("not an image")
    _png(src / ".hidden.png", _rgb(4, 4))
    out = tmp_path / "hr"
    w3 = ["--scale", "3", "--weights", str(weights[3])]
    assert main(["upscale", str(src), str(out), *w3]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert np.asarray(Image.open(out / "a.png")).shape == (18, 24, 3)
    assert Image.open(out / "b.png").mode == "L"
    assert main(["upscale", str(src), str(tmp_path / "webp"), *w3, "--ext", ".webp"]) == 0
    assert sorted(p.name for p in (tmp_path / "webp").iterdir()) == ["a.webp", "b.webp"]
    capsys.readouterr()
    assert main(["upscale", str(src), str(out), *w3]) == 2  # both outputs exist
    assert "a.png and 1 more exists" in _one_error_line(capsys)
    # One bad file in a folder: nothing at all is written.
    (src / "c.png").write_bytes(b"")
    assert main(["upscale", str(src), str(tmp_path / "none"), *w3]) == 2
    assert "c.png" in _one_error_line(capsys)
    assert not (tmp_path / "none").exists()
    (src / "c.png").unlink()
    # Two inputs that would be written to the same file.
    _png(src / "a.bmp", _rgb(4, 4))
    assert main(["upscale", str(src), str(tmp_path / "clash"), *w3]) == 2
    assert "a.bmp and a.png" in _one_error_line(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["upscale", str(empty), str(tmp_path / "x"), *w3]) == 2
    assert "no image files" in _one_error_line(capsys)


# Reliability (issue 14): what a hostile but realistic user tried.


class _NaNModel(nn.Module):
    """Stands for a model whose weights went bad in a way no file check sees."""

    scale = 2

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, z, steps=None, mask=None):
        x = torch.nn.functional.interpolate(z, scale_factor=2) * self.w * float("nan")
        return [z], [x]


def test_non_finite_model_output_is_refused_not_written_black():
    with pytest.raises(ValueError, match="non-finite values"):
        upscale(_rgb(12, 12), 2, weights=_NaNModel(), tile=None, window=None)


def test_cli_corrupted_weights_exit_2_and_write_nothing(tmp_path, weights, capsys):
    src = _png(tmp_path / "in.png", _rgb(10, 10))
    bad = tmp_path / "flipped.pt"
    data = bytearray(weights[2].read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 2000):
        data[i] ^= 0xFF
    bad.write_bytes(bytes(data))
    dst = tmp_path / "up.png"
    assert main(["upscale", str(src), str(dst), "--scale", "2", "--weights", str(bad)]) == 2
    assert "corrupted" in _one_error_line(capsys) and not dst.exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_cli_refuses_to_write_over_its_input_file_or_folder(tmp_path, weights, capsys, overwrite):
    img = _rgb(8, 8)
    src = _png(tmp_path / "in.png", img)
    flag = ["--overwrite"] if overwrite else []
    args = ["--scale", "2", "--weights", str(weights[2]), *flag]
    assert main(["upscale", str(src), str(src), *args]) == 2
    assert "refusing to write over the input" in _one_error_line(capsys)
    assert main(["upscale", str(tmp_path), str(tmp_path), "--ext", "png", *args]) == 2  # folder onto itself
    assert "refusing to write over the input" in _one_error_line(capsys)
    assert np.array_equal(np.asarray(Image.open(src)), img)  # the source is untouched


def test_cli_unwritable_output_fails_before_computing_and_names_the_users_path(tmp_path, weights, capsys,
                                                                              monkeypatch):
    import errno
    import os

    from cisr_lib import imageio

    src = _png(tmp_path / "in.png", _rgb(8, 8))
    dst = tmp_path / "ro" / "x.png"
    real_open = os.open

    def read_only(path, flags, *a):  # a read-only file system: creating any file there fails
        if str(path).startswith(str(tmp_path / "ro")) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(imageio.os, "open", read_only)
    monkeypatch.setattr(inference, "upscale", lambda *a, **k: pytest.fail("computed before the output was checked"))
    assert main(["upscale", str(src), str(dst), "--scale", "2", "--weights", str(weights[2])]) == 2
    line = _one_error_line(capsys)
    assert line == f"cisr upscale: error: cannot write {dst}: Read-only file system"
    assert ".tmp" not in line and not (tmp_path / "ro").exists()  # the probe leaves nothing behind


def test_cli_too_long_output_name_fails_before_computing(tmp_path, weights, capsys, monkeypatch):
    src = _png(tmp_path / "in.png", _rgb(8, 8))
    dst = tmp_path / ("n" * 250 + ".png")  # fits the 255-byte limit, its temporary file does not
    monkeypatch.setattr(inference, "upscale", lambda *a, **k: pytest.fail("computed before the output was checked"))
    assert main(["upscale", str(src), str(dst), "--scale", "2", "--weights", str(weights[2])]) == 2
    line = _one_error_line(capsys)
    assert f"cannot write {dst}" in line and "too long" in line.lower()


def test_cli_warns_in_one_line_that_only_the_first_frame_is_used(tmp_path, weights, capsys):
    frames = [Image.fromarray(_rgb(8, 8, seed=k)) for k in range(3)]
    src = tmp_path / "anim.webp"
    frames[0].save(src, save_all=True, append_images=frames[1:], lossless=True)
    assert main(["upscale", str(src), str(tmp_path / "up.png"), "--scale", "2", "--weights", str(weights[2])]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cisr upscale: warning: {src}: 3 frames (animated or multi-page); only the first is read, "
                   "the other 2 are ignored"]


def test_large_outputs_warn_with_their_memory(monkeypatch, weights):
    monkeypatch.setattr(inference, "LARGE_OUTPUT_MP", 0.001)  # 1,000 pixels of output
    with pytest.warns(inference.LargeImageWarning, match=r"large image: 20x20 gives a 40x40 output .* GiB"):
        upscale(_rgb(20, 20), 2, weights=weights[2])
    assert inference.memory_estimate(1000, 2000, 3, 2, 256) == 2 * 24_000_000 + 3 * 512 * 4000 * 4 + 6_000_000
