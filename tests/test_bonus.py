"""The bonus strategies: free bits and a beta ceiling in the loss, z = 0 at test time, and
report/bonus.tex."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lab4.config import make_config
from lab4.model import CVAE, kl_divergence, kl_per_channel
from lab4.report import bonus as report_bonus
from lab4.run.folder import RunDir
from lab4.schedules import beta_at, kl_beta
from lab4.util.errors import Lab4Error

ROOT = Path(__file__).resolve().parents[1]
BONUS_TEX = ROOT / "report" / "bonus.tex"


def tiny_model_and_clip(seed: int = 0, T: int = 4):
    torch.manual_seed(seed)
    model = CVAE(F=16, L=8, N=4, D=16)
    frames, poses = torch.rand(2, T, 3, 16, 32), torch.rand(2, T, 3, 16, 32)  # (B, T, 3, H, W)
    return model, frames, poses


def loss_of(model, frames, poses, beta=0.7, teacher_forcing=True, **kw):
    torch.manual_seed(1)  # the same reparameterisation noise for every call
    return model.clip_loss(frames, poses, beta, teacher_forcing, **kw)


def grads(model, loss) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_defaults_are_the_labs_loss_bit_for_bit(teacher_forcing):
    model, frames, poses = tiny_model_and_clip()
    plain = loss_of(model, frames, poses, teacher_forcing=teacher_forcing)
    explicit = loss_of(model, frames, poses, teacher_forcing=teacher_forcing, kl_weight=1.0, free_bits=0.0)
    assert torch.equal(plain["loss"], plain["mse"] + 0.7 * plain["kl"])  # MSE + beta * the listed KL
    assert torch.equal(plain["loss"], explicit["loss"]) and torch.equal(plain["kl"], explicit["kl"])
    cfg = make_config("tiny")
    assert (cfg.free_bits, cfg.kl_beta_max) == (0.0, 1.0)
    for p in [0, 0.3, 0.99, 1.0, 1.5, 2.0]:  # the ceiling of 1 never binds: the lab's beta exactly
        lab = kl_beta(cfg.kl_anneal_type, p, cfg.num_epoch, cfg.kl_anneal_cycle, cfg.kl_anneal_ratio)
        assert beta_at(cfg, p) == lab


def test_kl_per_channel_sums_to_the_labs_kl():
    mu, logvar = torch.randn(3, 2, 4, 8, 16), torch.randn(3, 2, 4, 8, 16)  # (T-1, B, N, H, W)
    per = kl_per_channel(mu, logvar)
    assert per.shape == (3, 4) and (per >= 0).all()
    assert torch.allclose(per.sum(1), torch.stack([kl_divergence(m, lv) for m, lv in zip(mu, logvar)]))


def test_free_bits_floor_raises_the_loss_and_removes_the_kl_gradient_below_it():
    model, frames, poses = tiny_model_and_clip()
    plain = loss_of(model, frames, poses)
    floor = 1e4  # nats per channel per frame: far above any channel's KL of this model
    high = loss_of(model, frames, poses, free_bits=floor)
    T, N = frames.shape[1], model.dims["N"]
    assert torch.equal(high["kl"], plain["kl"])  # the logged KL is the true one
    assert high["loss"] > plain["loss"]
    assert torch.allclose(high["loss"], high["mse"] + 0.7 * floor * (T - 1) * N)
    # below the floor only the MSE moves the weights: the same gradient as with beta = 0
    assert torch.allclose(
        grads(model, high["loss"]), grads(model, loss_of(model, frames, poses, beta=0.0)["loss"])
    )
    # a floor under every channel's KL changes nothing but rounding
    low = loss_of(model, frames, poses, free_bits=1e-6)
    assert (
        kl_per_channel(
            *model.Gaussian_Predictor(
                model.frame_transformation(frames[:, 1]), model.label_transformation(poses[:, 1])
            )
        ).min()
        > 1e-6
    )
    assert torch.allclose(low["loss"], plain["loss"])
    assert torch.allclose(grads(model, low["loss"]), grads(model, plain["loss"]), atol=1e-6)


def test_beta_ceiling_caps_beta():
    cfg = make_config("tiny", kl_beta_max=0.25, kl_anneal_type="cyclical", kl_anneal_cycle=1, num_epoch=4)
    betas = [beta_at(cfg, p / 10) for p in range(45)]
    assert max(betas) == 0.25 and betas[0] == 0.0
    assert beta_at(cfg, 0.4) == kl_beta("cyclical", 0.4, 4, 1, 1.0) < 0.25  # the ramp itself is unchanged
    assert beta_at(make_config("tiny", kl_beta_max=0.25, kl_anneal_type="none"), 0.5) == 0.25


@pytest.mark.parametrize(
    "field, value",
    [("free_bits", -0.1), ("free_bits", float("nan")), ("kl_beta_max", 0.0), ("kl_beta_max", 1.5)],
)
def test_bad_bonus_settings_are_one_line_errors(field, value):
    with pytest.raises(Lab4Error, match=field):
        make_config("tiny", **{field: value})


def test_zero_z_rollout_is_deterministic_and_differs_from_a_sample():
    model, frames, poses = tiny_model_and_clip(T=6)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    a = model.rollout(frames[:, 0], poses, generator=gen, zero_z=True)
    b = model.rollout(frames[:, 0], poses, generator=torch.Generator().manual_seed(5), zero_z=True)
    assert torch.equal(a, b)
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(0).get_state())  # no sample drawn
    sampled = model.rollout(frames[:, 0], poses, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled[:, 0], a[:, 0]) and not torch.allclose(sampled[:, 1:], a[:, 1:])


def test_trainer_logs_capped_beta_true_kl_and_summary_has_z0(tiny_root, tmp_path):
    from lab4.run.after_training import evaluate_run, write_summary
    from lab4.train import Trainer

    cfg = make_config(
        "tiny",
        data_root=str(tiny_root),
        run_dir=str(tmp_path / "run"),
        num_epoch=1,
        milestones=(1,),
        kl_anneal_type="none",
        kl_beta_max=0.2,
        free_bits=1e3,
    )
    tr = Trainer(cfg).fit()
    it = [r for r in tr.rows if r["kind"] == "iter"]
    assert it and all(r["beta"] == 0.2 for r in it)
    floored = 1e3 * cfg.N_dim * (cfg.train_vi_len - 1)  # every channel of every frame at the floor
    # logged: the true KL, loss: floored
    assert all(r["kl"] < floored and r["loss"] > 0.2 * floored for r in it)
    summary = write_summary(tr, evaluate_run(tr), {})
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    val = json.loads((tmp_path / "run" / "val_summary.json").read_text())
    assert on_disk["mean_psnr_z0"] == summary["mean_psnr_z0"] == round(val["mean_psnr_z0"], 4)
    assert 0 < val["mean_psnr_z0"] < 100


def test_grid_runs_each_bonus_strategy_with_cyclicals_seeds_and_one_change(tmp_path):
    from lab4.grid.spec import load_grid

    for profile in ("quick", "full"):
        runs = {
            **dict(load_grid(ROOT / "experiments.yaml", profile)),
            **dict(load_grid(ROOT / "experiments-extra.yaml", profile)),
        }
        seeds = {name: o.get("seed", 0) for name, o in runs.items()}
        for strategy, kind in (("free-bits", "FreeBits"),):  # the beta ceiling is an option, not a grid entry
            mine = sorted(s for n, s in seeds.items() if n.startswith(strategy))
            # every seed has a cyclical run of the same seed to pair with
            assert mine and set(mine) <= {s for n, s in seeds.items() if re.fullmatch(r"cyclical(-s\d+)?", n)}
            over = {k: v for k, v in runs[strategy].items() if k != "seed"}
            cfg = make_config(profile, **over)
            run = RunDir(tmp_path / profile / strategy)
            run.path.mkdir(parents=True)
            run.write_config(cfg)
            assert kind == report_bonus.kind_of(run)
            assert set(over) - {"kl_anneal_type"} == {"free_bits"}


# -- the report's bonus section ----------------------------------------------------------------
def fake_run(base, name, psnr, z0, kl, active, **config) -> RunDir:
    """A run folder as 02_train leaves it, as far as the bonus reads it: summary numbers, config and a
    metrics.csv with the final KL."""
    run = RunDir(base / name)
    run.path.mkdir()
    seed = int(name.rsplit("-s", 1)[1]) if re.search(r"-s\d+$", name) else 0  # as the grid names seeds
    run.write_config({"train_vi_len": 8, "N_dim": 8, "seed": seed, **config})
    run.write_metrics(
        [dict(kind="epoch", epoch=0, kl=10.0 * 7), dict(kind="epoch", epoch=1, kl=kl * 7)],
        ["kind", "epoch", "kl"],
    )
    run.write_summary(dict(name=name, mean_psnr=psnr, mean_psnr_z0=z0, active_units=active))
    return run


def grid(tmp_path, fb_psnr=20.0, bm_psnr=20.0, fb_kl=0.05, fb_active=0, z0_shift=0.0, seeds=1):
    tmp_path = Path(tempfile.mkdtemp(prefix="grid-", dir=tmp_path))  # each call its own runs folder
    runs = []
    for k in range(seeds):
        sfx = f"-s{k}" if k else ""
        runs += [
            fake_run(tmp_path, f"cyclical{sfx}", 20.0 + 0.01 * k, 20.0 + z0_shift, 0.05, 0),
            fake_run(
                tmp_path,
                f"free-bits{sfx}",
                fb_psnr + 0.01 * k,
                fb_psnr + z0_shift,
                fb_kl,
                fb_active,
                free_bits=0.5,
            ),
            fake_run(tmp_path, f"beta-max{sfx}", bm_psnr, bm_psnr + z0_shift, 1.0, 0, kl_beta_max=0.1),
        ]
    return runs


def test_bonus_verdicts_flip_with_the_numbers(tmp_path):
    m = report_bonus.bonus_macros(grid(tmp_path))
    assert (m["BonusFreeBitsCase"], m["BonusBetaMaxCase"], m["BonusSeedCase"]) == ("same", "same", "one")
    assert (m["BonusFreeBitsCollapseCase"], m["BonusRefCollapseCase"], m["BonusZeroZCase"]) == (
        "collapsed",
        "collapsed",
        "same",
    )
    assert (m["BonusFreeBitsSetting"], m["BonusFreeBitsFloorFrame"], m["BonusFreeBitsFloorCase"]) == (
        "0.5",
        "4.0",
        "below",
    )
    m = report_bonus.bonus_macros(
        grid(tmp_path, fb_psnr=21.0, bm_psnr=18.5, fb_kl=4.1, fb_active=12, z0_shift=0.3, seeds=2)
    )
    assert (m["BonusFreeBitsCase"], m["BonusBetaMaxCase"], m["BonusSeedCase"]) == (
        "better",
        "worse",
        "several",
    )
    assert (m["BonusFreeBitsDelta"], m["BonusFreeBitsActive"], m["BonusFreeBitsFloorCase"]) == (
        "+1.00",
        "12",
        "at",
    )
    assert (m["BonusZeroZCase"], m["BonusZeroZHigher"], m["BonusZeroZRuns"]) == ("higher", "6", "6")
    m = report_bonus.bonus_macros(grid(tmp_path, fb_kl=9.0, z0_shift=-0.3))
    assert (m["BonusFreeBitsFloorCase"], m["BonusZeroZCase"]) == ("above", "lower")
    runs = grid(tmp_path)
    runs[0].summary()["mean_psnr_z0"] = 21.0  # one run gains, another loses
    runs[1].summary()["mean_psnr_z0"] = 19.0
    assert report_bonus.bonus_macros(runs)["BonusZeroZCase"] == "mixed"
    only_lab = [r for r in grid(tmp_path) if r.strategy == "cyclical"]
    m = report_bonus.bonus_macros(only_lab)
    assert (m["BonusFreeBitsCase"], m["BonusBetaMaxCase"], m["BonusFreeBitsFloorCase"]) == (
        "none",
        "none",
        "unknown",
    )
    rows = report_bonus.bonus_rows(grid(tmp_path, seeds=2))
    assert rows.count(r"\\") == 3 and r"free bits $\lambda=0.5$" in rows and r"$\pm$" in rows


def test_bonus_tex_has_a_sentence_for_every_case_and_every_macro_is_written(tmp_path):
    tex = re.sub(r"(?<!\\)%.*", "", BONUS_TEX.read_text())
    found: dict[str, set] = {}
    for hit in re.finditer(r"\\IfStrEqCase\{\\([A-Za-z]+)\}\{", tex):
        depth, i, names, k = 1, hit.end(), set(), 0
        while depth:  # the case list is {name}{sentence}{name}{sentence}...: every other group at depth 1
            if tex[i] == "{":
                if depth == 1:
                    if k % 2 == 0:
                        names.add(tex[i + 1 : tex.index("}", i)])
                    k += 1
                depth += 1
            elif tex[i] == "}":
                depth -= 1
            i += 1
        found.setdefault(hit.group(1), set()).update(names)
    assert set(found) == set(report_bonus.CASES)
    for name, values in report_bonus.CASES.items():
        assert found[name] == set(values), (name, found[name], values)
    written = set(report_bonus.bonus_macros(grid(tmp_path)))
    # main.tex and macros.tex define these
    from_main = {"LatentUnits", "InputRows", "UnknownCase", "IfStrEqCase", "IfStrEq", "TestAlpha"}
    defined_here = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", tex)) | {"AND"}  # \AND: ifthen's
    used = set(re.findall(r"\\([A-Z][A-Za-z]+)", tex)) - from_main - defined_here
    assert used <= written, sorted(used - written)


@pytest.mark.skipif(
    not (shutil.which("xelatex") and shutil.which("pdftotext")), reason="needs xelatex, pdftotext"
)
def test_bonus_tex_compiles_and_says_the_picked_sentences(tmp_path):
    from lab4.report import sections

    runs = grid(tmp_path, fb_psnr=21.0, fb_kl=4.1, fb_active=12)
    sections.write_generated(sections.Inputs(runs), tmp_path / "generated", names=("bonus",))
    shutil.copy(BONUS_TEX, tmp_path / "bonus.tex")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{amsmath,booktabs,xstring,ifthen}\n"
        "\\newcommand{\\UnknownCase}[1]{\\PackageError{doc}{#1}{}}\\newcommand{\\LatentUnits}{16384}\n"
        "\\newcommand{\\InputRows}[1]{\\csname @@input\\endcsname #1 }\n"
        "\\begin{document}\\csname @input\\endcsname{bonus}\\end{document}\n"
    )
    r = subprocess.run(
        ["xelatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout[-2000:]
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "doc.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    words = re.sub(r"[\s\-]", "", text)  # however TeX broke and hyphenated the lines

    def says(phrase):
        return re.sub(r"[\s\-]", "", phrase) in words

    assert says("free bits scored higher") and says("12 active units")
    assert says("Its KL ends at 4.10 nats per frame, about the floor of 4.0")
    assert says("no difference by the rule below") and not says("scored lower")


def test_bonus_comparison_uses_the_welch_test_over_seeds():
    """With two seeds or more on both sides a bonus strategy is better/worse only when the report's Welch
    test finds the difference at the 5% level; a mean gap inside a wide seed spread is "same" and printed as
    such."""

    def st(values):
        std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        return dict(values=values, psnr=float(np.mean(values)), std=std, n=len(values))

    ref = st([25.0, 25.2, 24.8])
    assert report_bonus.compare_case(st([30.0, 30.1, 29.9]), ref) == "better"
    assert report_bonus.compare_case(st([20.0, 20.3, 19.8]), ref) == "worse"
    assert report_bonus.compare_case(st([31.0, 19.0, 27.0]), ref) == "same"  # +0.7 dB mean, spread of 12 dB
    assert report_bonus.reference_test(st([30.0, 30.1, 29.9]), ref).startswith("95\\% interval +4.")
    assert report_bonus.reference_test(st([30.0]), ref) == "not tested"
