"""One run from its config to summary.json: train, validate, predict the test sequences, record.

``lab4 train`` and notebook 02_train (and so the grid, which executes it) all call :func:`run_experiment`, so
a run is made the same way whichever door it came through, and every finished run has the summary.json that
the report's table and figures read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab4.config import FIELDS, Config, make_config
from lab4.run.after_training import evaluate_run, predict_run, write_summary
from lab4.run.folder import RunDir
from lab4.run.identity import RunConflict, conflict
from lab4.train import Trainer
from lab4.util.paths import project_root, run_folder


@dataclass
class FinishedRun:
    trainer: Trainer
    evaluation: dict  # val_summary.json's numbers (lab4.run.after_training.evaluate_run)
    prediction: dict  # the test rollout's submission and local score; {} when the config skips it
    summary: dict  # summary.json as written


def run_experiment(
    cfg: Config, *, resume: bool = False, overwrite: bool = False, callbacks: dict | None = None, echo=print
) -> FinishedRun:
    """fit -> evaluate -> predict -> summary.json for ``cfg``. ``resume`` continues the same run from last.pt
    and ``overwrite`` replaces another run in the folder (lab4.run.identity.claim); ``callbacks`` maps a
    Trainer event to a function (a notebook's live plot). ``echo`` gets one line per stage."""
    if not overwrite and (why := conflict(RunDir(cfg.run_dir), cfg, resume)):
        raise RunConflict(why)  # before the data loads; Trainer.fit checks again under the run's lock
    trainer = Trainer(cfg)
    echo(
        f"{cfg.name}: device {trainer.device}; {len(trainer.train_data)} training frames, "
        f"{len(trainer.val_data)} validation frames; {trainer.iters_per_epoch(0)} iterations per epoch "
        f"-> {cfg.run_dir}"
    )
    for event, fn in (callbacks or {}).items():
        trainer.add_callback(event, fn)
    trainer.fit(resume=resume, overwrite=overwrite)
    resumed = f", resumed after epoch {trainer.start_epoch}" if trainer.start_epoch else ""
    echo(
        f"{cfg.name}: trained {trainer.epoch}/{cfg.num_epoch} epochs{resumed} "
        f"({trainer.fit_seconds:.1f} s in this session)"
    )
    evaluation = evaluate_run(trainer)
    echo(
        f"{cfg.name}: validation PSNR {evaluation['mean_psnr']:.2f} dB, "
        f"SSIM {evaluation['mean_ssim']:.3f} over {evaluation['frames'] - 1} generated frames "
        f"(repeat-first-frame {evaluation['baseline_mean_psnr']:.2f} dB)"
    )
    prediction = predict_run(trainer) if cfg.predict else {}
    if prediction:
        score = (
            ""
            if prediction["public"] is None
            else f" (local score: public {prediction['public']:.3f} dB, "
            f"private {prediction['private']:.3f} dB)"
        )
        echo(f"{cfg.name}: {prediction['sequences']} test sequences -> {prediction['submission']}{score}")
    summary = write_summary(trainer, evaluation, prediction)
    return FinishedRun(trainer, evaluation, prediction, summary)


def notebook_config(namespace: dict) -> Config:
    """02_train's parameters -> the run's Config.

    ``namespace`` is the notebook's variables: those named like a Config field are its flat parameters
    (None keeps the profile's value), ``extra`` carries any other field. With no ``name`` the run is named
    after what it trains (lab4.config.run_name), and with no ``run_dir`` it goes where the CLI would put it
    (lab4.util.paths.run_folder); a relative ``run_dir`` is taken from the project root.
    """
    flat = {k: v for k, v in namespace.items() if k in FIELDS and k != "profile" and v is not None}
    profile = namespace.get("profile") or "lab"
    cfg = make_config(profile, **{**(namespace.get("extra") or {}), **flat, "run_dir": ""})
    run_dir = Path(flat.get("run_dir") or run_folder(profile, cfg.name))
    # papermill runs the notebook in notebooks/, JupyterLab wherever it was opened
    if not run_dir.is_absolute():
        run_dir = project_root() / run_dir
    return cfg.replace(run_dir=str(run_dir))
