"""The report's figures of frames: validation frames with their poses, a rollout against the ground truth,
and the first test sequence as submitted. Each needs the dataset or a checkpoint, and says so when it is not
at hand.
"""

from __future__ import annotations

from pathlib import Path

from lab4 import plots
from lab4.evaluate import read_sequence
from lab4.run.folder import RunDir, best_run


def _data_root(run: RunDir) -> Path | None:
    """The dataset ``run`` trained on, or None when it is not on this machine."""
    from lab4.datasets.official import default_synth_root

    root = run.config().get("data_root") or ""
    root = Path(root) if root else default_synth_root(run.config().get("synth_preset", "small"))
    return root if root.is_dir() else None


def _val_split(run: RunDir):
    from lab4.datasets.official import load_split

    root = _data_root(run)
    if root is None:
        return None
    return load_split(
        root, "val", run.config().get("frame_H", 32), run.config().get("frame_W", 64), progress=False
    )


def _rollout(run: RunDir):
    """(ground truth uint8, prediction float) of a fresh validation rollout, or None if impossible."""
    if not (run.path / RunDir.LAST).is_file() or not run.config():
        return None
    from lab4.evaluate import validate
    from lab4.train import load_trained

    val = _val_split(run)
    if val is None:
        return None
    model, cfg = load_trained(run.path, device="cpu")
    res = validate(model, val, seed=cfg.seed)
    return val.frames[: len(res["pred"])], res["pred"]


def strip(runs, figures_dir, n: int = 5, rollout: bool = True) -> list[Path]:
    """Ground truth above generated frames of the best run: a fresh validation rollout from its
    checkpoint when ``rollout`` and the dataset is at hand, else the run's samples.png."""
    run = best_run(runs)
    pair = None
    try:
        pair = _rollout(run) if run is not None and rollout else None
    except Exception as e:  # a missing or foreign dataset must not stop the other figures
        print(f"strip: no fresh rollout for {run.name} ({type(e).__name__}: {e}); using samples.png")
    if pair is not None:
        return plots.save_strip(Path(figures_dir) / "strip", *pair, n=n, xlabel="validation frame index")
    fig, ax = plots.figure(height=2.0)
    png = run.path / RunDir.SAMPLES if run is not None else None
    if png is not None and png.is_file():
        import matplotlib.image as mpimg

        ax.imshow(mpimg.imread(png), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        plots.empty(ax, "no checkpoint and no samples.png")
    fig.tight_layout()
    return plots.save(fig, Path(figures_dir) / "strip")


def submission_strip(runs, figures_dir, n: int = 5) -> list[Path]:
    """The first test sequence as the best strategy's submission has it, above its hidden frames where the
    dataset ships them (SynthDance's test_gt/), else above nothing but the given first frame."""
    with_sub = [r for r in runs if (r.path / RunDir.SUBMISSION).is_file()]
    stem = Path(figures_dir) / "submission_strip"
    run = best_run(with_sub)
    if run is None:
        fig, ax = plots.figure(height=1.5)
        plots.empty(ax, "no run wrote a submission")
        return plots.save(fig, stem)
    H, W = int(run.config().get("frame_H", 32)), int(run.config().get("frame_W", 64))
    pred = read_sequence(run.path / RunDir.SUBMISSION, 0, H=H, W=W)
    root = _data_root(run)
    gt, labels = pred[:1].expand_as(pred), ("first frame", "generated")
    if root is not None and (root / "test_gt").is_dir():
        from lab4.datasets.official import load_test_gt

        gt, labels = (
            load_test_gt(root / "test_gt", H, W, progress=False)[0][: len(pred)],
            ("ground truth", "generated"),
        )
    return plots.save_strip(
        stem, gt, pred.float() / 255, n=n, xlabel="test sequence 0, frame index", labels=labels,
        width=plots.TEXT_WIDTH_IN * plots.SHOWN_STRIP,
    )  # fmt: skip


def dataset(runs, figures_dir, n: int = 6) -> list[Path]:
    """Validation frames above their pose images, from the dataset the runs trained on."""
    val = None
    try:
        val = _val_split(runs[0]) if runs and runs[0].config() else None
    except Exception as e:  # a missing or foreign dataset must not stop the other figures
        print(f"dataset: cannot load the validation split ({type(e).__name__}: {e})")
    stem = Path(figures_dir) / "dataset"
    stem.parent.mkdir(parents=True, exist_ok=True)
    if val is None:
        fig, ax = plots.figure(height=1.5)
        plots.empty(ax, "the runs' dataset is not on this machine")
        return plots.save(fig, stem)
    step = max(1, min(60, (len(val) - 1) // (n - 1)))
    out = []
    for ext in ("pdf", "png"):
        plots.save_dataset_preview(stem.with_suffix(f".{ext}"), val, n=n, step=step)
        out.append(stem.with_suffix(f".{ext}"))
    return out
