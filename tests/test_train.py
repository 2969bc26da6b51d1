"""The Trainer: the loss goes down, metrics.csv and config.json, determinism and exact resume."""

import math

import pytest
import torch

from lab4.config import make_config
from lab4.datasets import official as D
from lab4.run.folder import RunDir
from lab4.train import Trainer
from lab4.train_state import METRIC_FIELDS

torch.set_num_threads(1)  # 2 shared cores: one thread per process is far faster under contention

# smaller than `tiny` so that several runs fit in seconds; short clips give more steps per epoch
SMALL = dict(F_dim=8, L_dim=4, N_dim=4, D_out_dim=8, device="cpu", train_vi_len=4, batch_size=4)
TIMING = {"seconds", "frames_per_s"}


@pytest.fixture(scope="module")
def splits(tiny_root):
    val = D.load_split(tiny_root, "val", progress=False)
    return D.load_split(tiny_root, "train", progress=False), D.Split(val.frames[:8], val.poses[:8], val.root)


def _cfg(tiny_root, run_dir, **kw):
    return make_config("tiny", data_root=str(tiny_root), run_dir=str(run_dir), **{**SMALL, **kw})


def _train(cfg, splits, resume=False):
    return Trainer(cfg, *splits).fit(resume=resume)


@pytest.fixture(scope="module")
def straight(tiny_root, splits, tmp_path_factory):
    """2 epochs in one go (tiny's schedule: tfr falls at epoch 1, lr drops at epoch 1, cyclical beta)."""
    return _train(_cfg(tiny_root, tmp_path_factory.mktemp("straight")), splits)


def _weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_training_lowers_the_loss(tiny_root, splits, tmp_path):
    cfg = _cfg(
        tiny_root,
        tmp_path / "run",
        num_epoch=4,
        kl_anneal_type="none",
        milestones=(100,),
        lr=2e-3,
        tfr_sde=100,
        val_every=0,
    )
    tr = _train(cfg, splits)
    losses = [r["loss"] for r in tr.rows if r["kind"] == "epoch"]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.9 * losses[0], losses


def test_metrics_csv_and_config_json(straight, tiny_root):
    run = straight.run_dir
    rows = RunDir(run).metric_rows()  # typed: ints, floats, None for a blank
    with open(run / "metrics.csv") as f:
        assert f.readline().strip().split(",") == METRIC_FIELDS
    iters = [r for r in rows if r["kind"] == "iter"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    n_iter = straight.iters_per_epoch(0)
    assert n_iter == (64 // 4) // 4
    assert [r["epoch"] for r in epochs] == [0, 1]
    assert len(iters) == 2 * n_iter
    assert [r["iter"] for r in iters] == list(range(n_iter)) * 2
    for r in epochs:
        for k in (
            "loss",
            "mse",
            "kl",
            "grad_norm",
            "beta",
            "tfr",
            "lr",
            "val_psnr",
            "val_ssim",
            "baseline_psnr",
            "seconds",
        ):
            assert isinstance(r[k], float) and math.isfinite(r[k]), k
        mine = [i["loss"] for i in iters if i["epoch"] == r["epoch"]]
        assert r["loss"] == pytest.approx(sum(mine) / len(mine), rel=1e-5)
        assert r["iter"] == n_iter and r["progress"] == r["epoch"] + 1
        assert isinstance(r["active_units"], int) and r["active_units"] >= 0  # collapse, per validated epoch
    for r in iters:
        assert r["loss"] == pytest.approx(r["mse"] + r["beta"] * r["kl"], rel=1e-4)
        assert r["teacher_forcing"] in (0, 1)
        assert r["val_psnr"] is None
        assert r["grad_norm"] > 0  # logged before clipping, so it can exceed clip_grad
    # tiny schedule: tfr 1.0 in epoch 0, 0.9 in epoch 1; lr 1e-3 then 1e-4 (milestone 1)
    assert [r["tfr"] for r in epochs] == pytest.approx([1.0, 0.9])
    assert [r["lr"] for r in iters if r["epoch"] == 0] == pytest.approx([1e-3] * n_iter)
    assert iters[0]["beta"] == 0.0  # cyclical starts at 0
    assert all(r["teacher_forcing"] == 1 for r in iters if r["epoch"] == 0)
    # config.json round-trips
    cfg = RunDir(run).load_config()
    assert cfg == straight.cfg
    assert cfg.milestones == (1,) and cfg.F_dim == 8 and cfg.data_root == str(tiny_root)
    assert (run / "last.pt").is_file()


def test_determinism_two_identical_runs(straight, tiny_root, splits, tmp_path):
    again = _train(_cfg(tiny_root, tmp_path / "again"), splits)
    assert _weights_equal(straight.model, again.model)
    assert _strip(straight.rows) == _strip(again.rows)


def test_resume_equality_new_trainer(straight, tiny_root, splits, tmp_path):
    """1 epoch, then a new Trainer with num_epoch=2 and resume: the same weights and epoch-0 rows."""
    run = tmp_path / "resumed"
    # kl 'none': a 1-epoch config has another cyclical schedule, so compare against a 'none' straight run
    ref = _train(_cfg(tiny_root, tmp_path / "ref", kl_anneal_type="none"), splits)
    first = _train(_cfg(tiny_root, run, num_epoch=1, kl_anneal_type="none"), splits)
    assert first.epoch == 1
    resumed = _train(_cfg(tiny_root, run, num_epoch=2, kl_anneal_type="none"), splits, resume=True)
    assert resumed.epoch == 2
    assert _weights_equal(ref.model, resumed.model)
    ref_opt, res_opt = ref.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(ref_opt[k]["exp_avg"], res_opt[k]["exp_avg"]) for k in ref_opt)
    ref0 = [r for r in _strip(ref.rows) if r["epoch"] == 0]
    file_rows = RunDir(run).metric_rows()
    res0 = [r for r in file_rows if r["epoch"] == 0]
    assert len(ref0) == len(res0) > 1
    for a, b in zip(ref0, res0):
        for k, v in a.items():
            if v is None:
                continue
            if isinstance(v, float):
                assert b[k] == pytest.approx(v, rel=1e-6), k
            else:
                assert b[k] == v, k
    # the resumed run's epoch-1 rows match too, and nothing is duplicated
    assert [(r["kind"], r["epoch"]) for r in file_rows].count(("epoch", 0)) == 1
    ref1 = [r["loss"] for r in ref.rows if r["epoch"] == 1]
    res1 = [r["loss"] for r in file_rows if r["epoch"] == 1]
    assert res1 == pytest.approx(ref1, rel=1e-6)
    # after the resume the Trainer's rows are numbers, like those it logged itself
    assert [r["epoch"] for r in resumed.rows] == [r["epoch"] for r in file_rows]
    assert all(isinstance(r["loss"], float) for r in resumed.rows)


def test_resume_after_interruption_cyclical(straight, tiny_root, splits, tmp_path):
    """Killed after epoch 1 of a 2-epoch cyclical run, then resumed: identical to the straight run."""
    run = tmp_path / "interrupted"

    class Stop(Exception):
        pass

    def stop(trainer, info):
        raise Stop

    tr = Trainer(_cfg(tiny_root, run), *splits)
    tr.add_callback("on_epoch_end", stop)
    with pytest.raises(Stop):
        tr.fit()
    resumed = _train(_cfg(tiny_root, run), splits, resume=True)
    assert _weights_equal(straight.model, resumed.model)
    rows = RunDir(run).metric_rows()
    want = RunDir(straight.run_dir).metric_rows()
    assert len(rows) == len(want)
    for a, b in zip(want, rows):
        for k in METRIC_FIELDS:
            if k in TIMING or a[k] is None:
                continue
            if k == "kind":
                assert a[k] == b[k]
            else:
                assert b[k] == pytest.approx(a[k], rel=1e-6), k


def test_clip_grad_zero_trains_unclipped_and_logs_the_norm(tiny_root, splits, tmp_path):
    """clip_grad=0 switches clipping off: same first step as a clip too large to bite; norms logged."""
    kw = dict(num_epoch=1, val_every=0, kl_anneal_type="none")
    off = _train(_cfg(tiny_root, tmp_path / "off", clip_grad=0.0, **kw), splits)
    huge = _train(_cfg(tiny_root, tmp_path / "huge", clip_grad=1e12, **kw), splits)
    tight = _train(_cfg(tiny_root, tmp_path / "tight", clip_grad=1e-3, **kw), splits)
    assert _weights_equal(off.model, huge.model)
    assert not _weights_equal(off.model, tight.model)
    norms = [r["grad_norm"] for r in off.rows if r["kind"] == "iter"]
    assert norms and all(math.isfinite(n) and n > 1e-3 for n in norms)
    with pytest.raises(Exception, match="clip_grad must be >= 0"):
        make_config("tiny", clip_grad=-1.0)


def test_training_curves_from_trainer_rows_and_from_metrics_csv(straight, tmp_path):
    """02_train's curves figure: the same lines from the Trainer's rows as from metrics.csv (what a resumed
    run has), each panel holding the logged numbers."""
    import matplotlib.pyplot as plt

    from lab4.plots import training_curves

    fig = training_curves(straight.rows, tmp_path / "curves.png")
    again = training_curves(RunDir(straight.run_dir).metric_rows())
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert [ax.get_title() for ax in fig.axes] == ["loss", "MSE and KL", "schedules", "validation PSNR"]

    def lines(f):
        return [(list(line.get_xdata()), list(line.get_ydata())) for ax in f.axes for line in ax.lines]

    assert lines(fig) == lines(again)
    epochs = [r for r in straight.rows if r["kind"] == "epoch"]
    iters = [r for r in straight.rows if r["kind"] == "iter"]
    assert list(fig.axes[0].lines[1].get_ydata()) == [r["loss"] for r in epochs]
    assert list(fig.axes[1].lines[1].get_ydata()) == [r["kl"] for r in iters]
    assert list(fig.axes[2].lines[0].get_ydata()) == [r["beta"] for r in iters]
    assert list(fig.axes[3].lines[0].get_ydata()) == [r["val_psnr"] for r in epochs]
    assert list(fig.axes[3].lines[1].get_ydata()) == [r["baseline_psnr"] for r in epochs]
    plt.close(fig), plt.close(again)


def test_a_seed_fixes_the_weights_and_the_clip_order_whatever_the_strategy(tiny_root, tmp_path):
    """What lets the report pair strategies by seed (lab4.report.stats.seed_diff): two runs of one seed start
    from the same weights and see the clips in the same order, whichever KL or teacher-forcing schedule."""
    from lab4.config import make_config

    base = dict(data_root=str(tiny_root), device="cpu", seed=3)
    variants = [dict(kl_anneal_type=k) for k in ("monotonic", "cyclical", "none")] + [
        dict(tfr=0.0),
        dict(free_bits=0.5),
    ]
    trainers = [
        Trainer(make_config("tiny", run_dir=str(tmp_path / str(i)), **base, **v))
        for i, v in enumerate(variants)
    ]
    first = trainers[0]
    order = [torch.cat(first.sampler.batches(first.cfg.partial)) for _ in range(2)]  # two epochs' shuffles
    for tr in trainers[1:]:
        for k, v in first.model.state_dict().items():
            assert torch.equal(tr.model.state_dict()[k], v), k
        for epoch in range(2):
            assert torch.equal(torch.cat(tr.sampler.batches(tr.cfg.partial)), order[epoch]), epoch
    other = Trainer(make_config("tiny", run_dir=str(tmp_path / "other"), **{**base, "seed": 4}))
    assert not torch.equal(other.model.Generator[-1].weight, first.model.Generator[-1].weight)


@pytest.mark.parametrize(
    "milestones, want", [((), [1e-3, 1e-3, 1e-3]), ((2,), [1e-3, 1e-3, 1e-4]), ((1, 2), [1e-3, 1e-4, 1e-5])]
)
def test_lr_schedule_option_drops_only_at_the_given_milestones(tiny_root, splits, tmp_path, milestones, want):
    """The lab's MultiStepLR, stepped once per epoch: no milestones keeps the lr, each one divides it by 10
    from that epoch on (the study's lr-late sets one late milestone against the template's early (2, 5))."""
    cfg = _cfg(tiny_root, tmp_path / "run", num_epoch=3, milestones=milestones, val_every=0, partial=0.25)
    rows = _train(cfg, splits).rows
    for epoch, lr in enumerate(want):
        lrs = [r["lr"] for r in rows if r["kind"] == "iter" and r["epoch"] == epoch]
        assert lrs and lrs == pytest.approx([lr] * len(lrs))
