"""Profiles: named sets of overrides on top of the lab's defaults, and what each one is for."""

from __future__ import annotations

# Speed options that leave the math alone: the precision the GPU supports (lab4.util.device.choose_precision),
# channels_last, compile, fused Adam, CUDA graphs.
GPU_SPEED = dict(amp=True, channels_last=True, compile=True, fused_adam=True, cuda_graphs=True)
# The student's GPU profile: the optimisation of the course template and of the best public runs (batch 2,
# Adam at lr 1e-3, the gradient clip at norm 1, the KL summed over the latents), with the lr milestones
# moved later as those runs moved them: at the fractions of the run where the best one (270 epochs,
# [60, 100]) put them, 16 and 26 of the lab's 70 epochs. The template's (2, 5) leave 65 of 70 epochs at 1%
# of the lr; our own study could not tell a later drop from them at 6 epochs. Never trained here on a GPU yet.
FULL = dict(
    synth_preset="full",
    batch_size=2,
    lr=1e-3,
    clip_grad=1.0,
    kl_weight=1.0,
    milestones=(16, 26),
    val_every=5,
    **GPU_SPEED,
)

# Sized for 2 CPU cores, a few CPU-minutes a run (docs/speedrun.md has the times): a narrow model,
# 4-frame clips, half the clips, 3 epochs, teacher forcing 1 / 0.5 / 0, the lab's gradient
# clip at norm 1, the KL as a mean over the 8*32*64 latent elements (like the MSE over
# pixels: an effective beta the sum made 16,384x larger, which drove the posterior to the
# prior within two epochs), and bf16 autocast with channels_last on a CPU with native bf16
# (fp32 elsewhere). Validation only after the last epoch: the lab's 630-frame score with one z draw
# and with z = 0, and the report's primary score, 16 short rollouts with two draws each
# (lab4/short_rollouts.py), which average the draw's luck better than more 630-frame draws did
# for the same cost. Each choice was measured: docs/speedrun.md.
QUICK = dict(
    synth_preset="small",
    F_dim=32,
    L_dim=16,
    N_dim=8,
    D_out_dim=32,
    batch_size=2,
    lr=3e-3,
    train_vi_len=4,
    partial=0.5,
    num_epoch=3,
    milestones=(2,),
    clip_grad=1.0,
    kl_weight=1 / (8 * 32 * 64),
    tfr_sde=1,
    tfr_d_step=0.5,
    kl_anneal_cycle=2,
    kl_anneal_ratio=0.5,
    per_save=1,
    val_every=0,
    val_draws=1,
    amp=True,
    channels_last=True,
)

# Overrides on top of the lab's defaults. `quick` is sized for 2 CPU cores (a few minutes a run);
# `full` is the lab's budget with the GPU fast path; `tiny` is for tests (seconds).
PROFILES: dict[str, dict] = {
    "lab": {},
    "full": FULL,
    # `full` with a larger batch and lr, faster per epoch on a big GPU; a departure from every measured
    # recipe, kept apart until a GPU run shows that it learns at least as well
    "full-b16": {**FULL, "batch_size": 16, "lr": 2e-3},
    # `full` cut to what one device session holds (python -m lab4 gpucheck): the lab's dims
    # on SynthDance full, 4 epochs (gpucheck stretches the schedule to the minutes left:
    # lab4.perf.gpuplan.gpu_schedule), teacher forcing for the first half, and no gradient
    # clipping: with the lab's KL summed over the latents the clip at norm 1 is set almost
    # entirely by the KL's gradient while beta anneals, starving the reconstruction.
    "gpu": dict(
        synth_preset="full",
        batch_size=16,
        lr=2e-3,
        num_epoch=4,
        milestones=(3,),
        clip_grad=0.0,
        tfr_sde=2,
        tfr_d_step=0.5,
        kl_anneal_cycle=2,
        kl_anneal_ratio=0.5,
        per_save=1,
        val_every=1,
        progress=False,
        **GPU_SPEED,
    ),
    "quick": QUICK,
    # `make study` (lab4/grid/study.py, study.yaml): quick's model and data at twice its epochs, under the
    # lab's loss (the KL summed, kl_weight 1) with the gradient clip at norm 100 that the lab-loss screen
    # found stable, the lab's lr milestones (2, 5), KL cycles as long as quick's (1.5 epochs), validation
    # every epoch with one z draw and no test rollout, no progress bars (papermill relaying them cost the
    # driver's workers a tenth of a core; the grid shows progress from metrics.csv). Six epochs is what the
    # study's runs fit into 90 minutes of 2 fp32 cores.
    "study": {
        **QUICK,
        **dict(
            num_epoch=6, milestones=(2, 5), clip_grad=100.0, kl_weight=1.0, kl_anneal_cycle=4, val_every=1
        ),
        **dict(val_draws=1, predict=False, progress=False),
    },
    "tiny": dict(
        synth_preset="tiny",
        F_dim=16,
        L_dim=8,
        N_dim=4,
        D_out_dim=16,
        batch_size=2,
        num_epoch=2,
        milestones=(1,),
        tfr_sde=1,
        per_save=1,
        val_every=1,
        kl_anneal_cycle=2,
        progress=False,
    ),
}

# What each profile is for, in a sentence or two for a student (docs/config.md, `lab4 train --help`)
PROFILE_HELP = {
    "lab": "The course template's settings, unchanged: the lab's model, 70 epochs, on any device.",
    "full": "The lab's model and 70 epochs on SynthDance full, with the GPU speed options and the learning "
    "rate drops moved to epochs 16 and 26. For a GPU.",
    "full-b16": "full with batches of 16 at lr 2e-3: faster per epoch on a big GPU, not yet shown to learn "
    "as well.",
    "gpu": "full cut to what one GPU session holds (lab4 gpucheck): 4 epochs of batch 16, teacher forcing "
    "for the first half, no gradient clipping.",
    "quick": "Sized for 2 CPU cores, a few minutes a run: a narrow model, 4-frame clips, half the clips, 3 "
    "epochs. The default of lab4 train and 02_train.",
    "study": "make study's runs: quick's model and data for 6 epochs under the lab's loss, validated every "
    "epoch, with no test rollout.",
    "tiny": "For tests: a tiny model on SynthDance tiny, 2 epochs in seconds.",
}
