"""PSNR per frame, the course's submission format, the local scorer and the validation rollout."""

import csv
import math

import numpy as np
import pytest
import torch

from lab4 import evaluate as E
from lab4.util.errors import Lab4Error

torch.set_num_threads(1)  # 2 shared cores: one thread per process is far faster under contention

C, H, W = 3, 4, 8  # small frames for the format tests
V = C * H * W


def test_psnr_per_frame_hand_computation():
    target = torch.zeros(3, 3, 4, 4)
    pred = target.clone()
    pred[0] += 0.1  # constant error 0.1 -> MSE 0.01 -> 20 dB
    pred[1, :, :2] += 0.5  # half the pixels off by 0.5 -> MSE 0.125
    psnr = E.psnr_per_frame(pred, target)
    assert psnr.shape == (3,)
    assert psnr[0].item() == pytest.approx(20.0, abs=1e-5)
    assert psnr[1].item() == pytest.approx(10 * math.log10(1 / 0.125), abs=1e-5)
    assert psnr[2].item() == E.PSNR_CAP  # exact frame
    # per frame, not over the batch: the PSNR of the pooled MSE would be different
    pooled = 10 * math.log10(1 / ((0.01 + 0.125 + 0) / 3))
    assert psnr[:2].mean().item() != pytest.approx(pooled)
    # data range 255
    p255 = E.psnr_per_frame(
        torch.full((1, 3, 2, 2), 105.0), torch.full((1, 3, 2, 2), 100.0), data_range=255.0
    )
    assert p255.item() == pytest.approx(20 * math.log10(255 / 5))
    assert math.isfinite(E.psnr_per_frame(torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).item())


def _seqs(n, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(T, C, H, W, generator=g) for _ in range(n)]


def test_submission_round_trip(tmp_path):
    T = 630
    preds = _seqs(2, T)
    preds[0][3, 0, 0, 0] = 1.5  # clamped to 255
    preds[0][3, 0, 0, 1] = -0.2  # clamped to 0
    path = tmp_path / "submission.csv"
    E.write_submission(path, preds)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id"] + [str(i) for i in range(V)]
    assert len(rows) == 1 + 2 * T
    assert [int(r[0]) for r in rows[1:]] == list(range(2 * T))
    sub = E.read_submission(path, 2 * T, V)
    # round(x * 255) in float32, the dtype the frames are in (round half to even, as torch and numpy do)
    want = np.concatenate(
        [np.round(np.clip(p.numpy(), 0, 1) * np.float32(255)).reshape(T, -1) for p in preds]
    )
    assert np.array_equal(sub, want)
    # row 630k+j is frame j of sequence k, flattened in C, H, W order
    k, j = 1, 17
    assert np.array_equal(sub[630 * k + j], want[630 * k + j])
    c, h, w = 2, 3, 5
    assert sub[630 * k + j][c * H * W + h * W + w] == np.round(preds[k][j, c, h, w].numpy() * np.float32(255))
    assert sub[3, 0] == 255 and sub[3, 1] == 0
    assert np.array_equal(E.to_uint8(preds[1]).reshape(T, -1), sub[T:])


def _write(path, gt, offset=0, mutate=None):
    """A submission whose frames are gt (uint8) plus an offset, as the course's CSV."""
    arr = np.concatenate([g.reshape(len(g), -1).numpy().astype(np.int64) for g in gt]) + offset
    if mutate:
        mutate(arr)
    arr = np.clip(arr, 0, 255)
    header = "id," + ",".join(map(str, range(arr.shape[1])))
    path.write_text("\n".join([header] + [f"{i}," + ",".join(map(str, r)) for i, r in enumerate(arr)]) + "\n")
    return path


def _gt(n=5, T=605, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, 240, (T, C, H, W), generator=g, dtype=torch.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def gt():
    return _gt()


def test_score_perfect_and_constant_offset(tmp_path, gt):
    res = E.score(_write(tmp_path / "a.csv", gt), gt)
    assert res["public"] == E.PSNR_CAP and res["private"] == E.PSNR_CAP and res["overall"] == E.PSNR_CAP
    res = E.score(_write(tmp_path / "b.csv", gt, offset=5), gt)
    want = 20 * math.log10(255 / 5)
    assert res["public"] == pytest.approx(want) and res["private"] == pytest.approx(want)
    assert res["per_sequence"] == pytest.approx([want] * 5)


def test_unscored_frames_do_not_count(tmp_path, gt):
    base = E.score(_write(tmp_path / "a.csv", gt, offset=5), gt)
    T = len(gt[0])

    def corrupt(arr):
        for k in range(5):
            arr[k * T + 0] = 0  # frame 0 (the given frame) is not scored
            # frames past 600 are not scored
            arr[k * T + 601 : k * T + T] = 255 - arr[k * T + 601 : k * T + T]

    res = E.score(_write(tmp_path / "c.csv", gt, offset=5, mutate=corrupt), gt)
    assert res["public"] == pytest.approx(base["public"]) and res["private"] == pytest.approx(base["private"])

    def corrupt_600(arr):
        arr[600] = 0  # frame 600 of sequence 0 is scored

    res = E.score(_write(tmp_path / "d.csv", gt, offset=5, mutate=corrupt_600), gt)
    assert res["public"] < base["public"] - 0.01
    assert res["private"] == pytest.approx(base["private"])


def test_public_is_seqs_0_2_private_is_3_4(tmp_path, gt):
    T = len(gt[0])

    def worse_private(arr):
        arr[3 * T :] += 20  # only sequences 3 and 4 get worse

    res = E.score(_write(tmp_path / "p.csv", gt, offset=5, mutate=worse_private), gt)
    assert res["public"] == pytest.approx(20 * math.log10(255 / 5))
    assert res["private"] < 20 * math.log10(255 / 5) - 5
    assert res["per_sequence"][:3] == pytest.approx([20 * math.log10(255 / 5)] * 3)

    # the mean over frames 1..600 per sequence: a single bad frame costs exactly 1/600 of its PSNR change
    def one_bad(arr):
        arr[T + 10] = gt[1][10].reshape(-1).numpy().astype(np.int64) + 15  # gt <= 239: no clipping

    res = E.score(_write(tmp_path / "q.csv", gt, offset=5, mutate=one_bad), gt)
    good, bad = 20 * math.log10(255 / 5), 20 * math.log10(255 / 15)
    assert res["per_sequence"][1] == pytest.approx((599 * good + bad) / 600)


def _valid_lines(n_rows=2, n_values=4):
    header = "id," + ",".join(str(i) for i in range(n_values))
    return [header] + [f"{i}," + ",".join(["7"] * n_values) for i in range(n_rows)]


def _read(tmp_path, lines, n_rows=2, n_values=4):
    p = tmp_path / "s.csv"
    p.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(Lab4Error) as e:
        E.read_submission(p, n_rows, n_values)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg
    return msg.lower()


def test_valid_small_submission_reads(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_text("\n".join(_valid_lines()) + "\n")
    assert E.read_submission(p, 2, 4).tolist() == [[7] * 4, [7] * 4]


def _replace(lines, row, col, value):
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    return lines


@pytest.mark.parametrize(
    "case,make,words",
    [
        (
            "missing column",
            lambda L: [L[0].rsplit(",", 1)[0]] + [row.rsplit(",", 1)[0] for row in L[1:]],
            ["column"],
        ),
        ("extra column", lambda L: [L[0] + ",4"] + [row + ",7" for row in L[1:]], ["column"]),
        ("too few rows", lambda L: L[:-1], ["rows"]),
        ("too many rows", lambda L: L + ["2,7,7,7,7"], ["rows"]),
        ("missing header", lambda L: L[1:] + ["2,7,7,7,7"], ["header"]),
        ("empty", lambda L: [], ["empty"]),
        ("nan", lambda L: _replace(L, 1, 2, "nan"), ["nan"]),
        ("negative", lambda L: _replace(L, 2, 3, "-1"), ["outside 0-255"]),
        ("over 255", lambda L: _replace(L, 1, 1, "256"), ["outside 0-255"]),
        ("non-integer", lambda L: _replace(L, 2, 1, "3.5"), ["non-integer"]),
        ("non-numeric", lambda L: _replace(L, 1, 4, "abc"), ["non-numeric", "abc"]),
        ("wrong id", lambda L: _replace(L, 2, 0, "5"), ["id", "expected 1"]),
        ("short row", lambda L: L[:2] + ["1,7,7"], ["line 3", "columns"]),
    ],
)
def test_malformed_submissions(tmp_path, case, make, words):
    msg = _read(tmp_path, make(_valid_lines()))
    for w in words:
        assert w in msg, (case, msg)


def test_missing_submission_file(tmp_path):
    with pytest.raises(Lab4Error, match="no such submission"):
        E.read_submission(tmp_path / "none.csv", 2, 4)


def test_score_rejects_malformed_through_score(tmp_path, gt):
    p = _write(tmp_path / "bad.csv", gt)
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(Lab4Error, match="rows"):
        E.score(p, gt)


def test_validate_on_tiny_run(tiny_run, tiny_root):
    from lab4.datasets.official import load_split
    from lab4.train import load_trained

    model, cfg = load_trained(tiny_run, device="cpu")
    val = load_split(tiny_root, "val", cfg.frame_H, cfg.frame_W, progress=False)
    T = len(val)
    res = E.validate(model, val, seed=0)
    for k in ("psnr", "ssim", "baseline_psnr", "baseline_ssim"):
        assert res[k].shape == (T - 1,), k
        assert torch.isfinite(res[k]).all()
    assert res["frame"].tolist() == list(range(1, T))
    assert res["pred"].shape == (T, 3, 32, 64)
    assert torch.equal(res["pred"][0], val.frames[0].float() / 255)
    assert 0 <= res["pred"].min() and res["pred"].max() <= 1
    # the baseline repeats frame 0: its PSNR is that of frame 0 against each frame
    gt = val.frames.double() / 255
    want = 10 * torch.log10(1 / (gt[1:] - gt[:1]).pow(2).flatten(1).mean(1))
    assert torch.allclose(res["baseline_psnr"], want.clamp(max=E.PSNR_CAP))
    assert res["mean_psnr"] == pytest.approx(res["psnr"].mean().item())
    assert res["baseline_mean_psnr"] == pytest.approx(res["baseline_psnr"].mean().item())
    # reproducible with the same seed, different with another
    again = E.validate(model, val, seed=0)
    assert torch.equal(again["pred"], res["pred"])
    other = E.validate(model, val, seed=1)
    assert not torch.equal(other["pred"], res["pred"])
    # max_frames limits the rollout
    short = E.validate(model, val, seed=0, max_frames=5)
    assert short["psnr"].shape == (4,)


def test_write_gif_keeps_every_frame_and_its_colours(tmp_path):
    torch.manual_seed(0)
    base = torch.rand(1, 3, 8, 16).expand(12, -1, -1, -1).clone()  # (T, 3, H, W)
    base[:, :, 2:5, 3:7] = torch.linspace(0, 1, 12)[:, None, None, None]  # a patch that brightens over time
    E.write_gif(tmp_path / "a.gif", base, scale=2)
    from PIL import Image, ImageSequence

    im = Image.open(tmp_path / "a.gif")
    frames = [np.asarray(f.convert("RGB"), dtype=np.float64) / 255 for f in ImageSequence.Iterator(im)]
    assert len(frames) == 12 and frames[0].shape == (16, 32, 3)
    want = base.permute(0, 2, 3, 1).repeat_interleave(2, 1).repeat_interleave(2, 2).numpy()
    err = np.abs(np.stack(frames) - want).mean()
    assert err < 0.03, err


def test_evaluate_and_predict_run_same_from_a_run_folder_and_from_the_trainer(tiny_run, tmp_path):
    """`python -m lab4 evaluate|predict` (a run folder) and notebook 02 (its Trainer) call the same functions
    and get the same numbers and files."""
    import json
    import shutil

    from lab4.config import Config
    from lab4.datasets.official import load_split
    from lab4.run.after_training import evaluate_run, predict_run
    from lab4.train import Trainer, load_trained

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    TIMES = ("seconds", "cpu_seconds")  # how long it took: the only numbers that differ between calls
    ev = evaluate_run(run, device="cpu")
    assert json.loads((run / "val_summary.json").read_text()) == {
        k: v for k, v in ev.items() if k not in TIMES
    }
    assert (run / "psnr_per_frame.png").stat().st_size and (run / "samples.png").stat().st_size
    model, cfg = load_trained(run, device="cpu")
    res = E.validate(
        model, load_split(cfg.data_root, "val", cfg.frame_H, cfg.frame_W, progress=False), seed=cfg.seed
    )
    assert ev["mean_psnr"] == res["mean_psnr"] and ev["frames"] == 24 and ev["name"] == cfg.name
    with open(run / "psnr_per_frame.csv") as f:
        assert [float(r["psnr"]) for r in csv.DictReader(f)] == pytest.approx(res["psnr"].tolist(), abs=1e-4)
    pred = predict_run(run, device="cpu")
    assert pred["sequences"] == 5 and pred["submission"] == str(run / "submission.csv")
    assert 0 < pred["public"] < 100 and 0 < pred["private"] < 100  # SynthDance ships test_gt/
    assert (run / "pred_seq4.gif").is_file()

    trainer = Trainer(Config.load(run / "config.json").replace(run_dir=str(run), device="cpu")).fit(
        resume=True
    )
    assert trainer.last_val is None  # finished already: nothing trained, nothing validated yet
    submission = (run / "submission.csv").read_bytes()
    assert {k: v for k, v in evaluate_run(trainer).items() if k not in TIMES} == {
        k: v for k, v in ev.items() if k not in TIMES
    }
    again = predict_run(trainer, out=tmp_path / "again" / "sub.csv")
    assert (tmp_path / "again" / "sub.csv").read_bytes() == submission and again["public"] == pred["public"]


def test_active_units_count_the_latents_that_follow_the_input():
    """A posterior mean that ignores the frame has 0 active units; one that follows it has them all."""
    from lab4.datasets.official import Split
    from lab4.model import CVAE

    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (12, 3, 8, 16), generator=g, dtype=torch.uint8)
    val = Split(frames, torch.randint(0, 256, (12, 3, 8, 16), generator=g, dtype=torch.uint8), root=None)
    model = CVAE(F=8, L=4, N=4, D=8)
    last = model.Gaussian_Predictor.net[-1]  # the 1x1 conv whose first N outputs are mu
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    collapsed = E.active_units(model, val)
    assert collapsed == dict(active_units=0, latent_units=4 * 8 * 16, active_fraction=0.0)

    class FollowsTheFrame(torch.nn.Module):  # mu = 3 x the frame's mean brightness on every unit
        def forward(self, frame_feat, pose_feat):
            mu = 3 * frame_feat.mean(1, keepdim=True).expand(-1, 4, -1, -1)
            return mu, torch.zeros_like(mu)

    model.Gaussian_Predictor = FollowsTheFrame()
    model.frame_transformation = torch.nn.Identity()
    live = E.active_units(model, val)
    mu = 3 * (frames.float() / 255).mean(1)  # (T, H, W): its variance over frames is about 9 * 1/12 / 3
    assert live["active_units"] == 4 * int((mu.var(0, unbiased=False) > 0.01).sum()) > 0
    assert live["active_fraction"] == live["active_units"] / live["latent_units"]


def test_k_draws_and_the_one_step_score(tiny_root):
    """The run's score averages K z draws, each the very rollout a single validation with that seed gives;
    the one-step score predicts each frame from the true one before it, by hand here."""
    from lab4.datasets.official import load_split
    from lab4.model import CVAE

    torch.manual_seed(0)
    model = CVAE(16, 8, 4, 16).eval()
    val = load_split(tiny_root, "val", progress=False)
    draws = E.rollout_draws(model, val, [3, 4], max_frames=10)
    for seed, got in zip((3, 4), draws["mean_psnr_per_draw"]):
        assert got == pytest.approx(E.validate(model, val, seed=seed, max_frames=10)["mean_psnr"], abs=1e-4)
    assert draws["mean_psnr"] == pytest.approx(np.mean(draws["mean_psnr_per_draw"]))
    one = E.one_step_psnr(model, val, seed=5, batch=7)  # batches that do not divide the frames
    g = torch.Generator().manual_seed(5)
    frames = val.frames.float() / 255
    z = torch.randn((len(val) - 1, 4, *frames.shape[-2:]), generator=g)
    with torch.no_grad():
        pred = torch.cat(
            [
                model.rollout_step(
                    frames[i - 1 : j - 1],
                    model.label_transformation(val.poses[i:j].float() / 255),
                    z[i - 1 : j - 1],
                )
                for i, j in ((1, 8), (8, 15), (15, len(val)))
            ]
        )
    assert one == pytest.approx(E.psnr_per_frame(pred.clamp(0, 1), frames[1:]).mean().item(), abs=1e-4)
