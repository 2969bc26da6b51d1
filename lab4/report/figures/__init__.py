"""The report's comparison figures, one function per figure, each written as PDF and PNG: curves.py draws
them from the runs' numbers, frames.py from the frames themselves.

notebooks/03_compare.ipynb calls these on the runs of lab4.run.folder.load_runs; report/main.tex includes
the PDFs by the names in FIGURES. A missing piece (no psnr_per_frame.csv, no checkpoint) gives a
figure that says what is missing instead of an exception, so one bad run never stops the others.
"""

from __future__ import annotations

from pathlib import Path

from lab4.report.figures import curves, frames

FIGURES = ("dataset", "loss_curves", "tfr_vs_loss", "val_psnr", "psnr_per_frame", "strip", "submission_strip")
# drawn too, but in the report only where they show something: beta_curves in the notebook (the loss figure
# has a beta panel), collapse where some latent unit is active (else the report says so in one sentence)
EXTRA_FIGURES = ("beta_curves", "collapse")
# every figure by its name, (runs, figures_dir) -> [pdf, png]
DRAW = {
    "dataset": frames.dataset,
    "loss_curves": curves.loss_curves,
    "beta_curves": curves.beta_curves,
    "tfr_vs_loss": curves.tfr_vs_loss,
    "collapse": curves.collapse,
    "val_psnr": curves.val_psnr,
    "val_psnr_per_epoch": curves.val_psnr_per_epoch,
    "psnr_per_frame": curves.psnr_per_frame,
    "strip": frames.strip,
    "submission_strip": frames.submission_strip,
}


def make_figures(runs, figures_dir, rollout: bool = True) -> dict[str, list[Path]]:
    """Every figure in FIGURES; ``rollout=False`` draws the strip from samples.png, without a checkpoint."""
    out = {stem: DRAW[stem](runs, figures_dir) for stem in FIGURES + EXTRA_FIGURES if stem != "strip"}
    out["strip"] = frames.strip(runs, figures_dir, rollout=rollout)
    return out
