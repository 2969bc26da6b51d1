"""Checkpoints interchangeable with the course template: our names <-> the template's key list
(../shared/reference/lab4-state-dict.tsv, copied below as TEMPLATE_TSV) in both directions, and a round
trip."""

import shutil
from pathlib import Path

import pytest
import torch

from lab4.checkpoint import load_checkpoint, our_key, save_checkpoint, template_key
from lab4.cli import main
from lab4.config import make_config
from lab4.model import CVAE
from lab4.train import load_trained

torch.set_num_threads(1)
TEMPLATE_TSV = Path(__file__).with_name("template_state_dict.tsv")
LAYOUT = {"state_dict", "optimizer", "lr", "tfr", "last_epoch"}


def _template_keys() -> list[tuple[str, tuple]]:
    """(key, shape) per line of the template's list, in its order; 'scalar' is shape ()."""
    out = []
    for line in TEMPLATE_TSV.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split("\t")
            out.append((key, () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))))
    return out


def _lab_checkpoint(path, epoch=3) -> CVAE:
    """A checkpoint in our layout at the lab's dims, with a real Adam state; returns its model."""
    torch.manual_seed(0)
    model = CVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    save_checkpoint(
        path,
        dict(
            model=model.state_dict(),
            optimizer=opt.state_dict(),
            epoch=epoch,
            config=make_config("lab").to_dict(),
        ),
    )
    return model


def test_our_names_map_to_the_template_list_in_order():
    ours = CVAE().state_dict()  # the lab's dims: F=128, L=32, N=12, D=192
    mapped = [(template_key(k), tuple(v.shape)) for k, v in ours.items()]
    assert mapped == _template_keys()
    assert [our_key(k) for k, _ in _template_keys()] == list(ours)


def test_export_writes_the_template_layout(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    _lab_checkpoint(run / "last.pt", epoch=12)
    out = tmp_path / "out" / "model.ckpt"
    assert main(["export", "--run-dir", str(run), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    # what the course's test script does (plain tensors and numbers)
    ckpt = torch.load(out, weights_only=True)
    assert set(ckpt) == LAYOUT
    assert [(k, tuple(v.shape)) for k, v in ckpt["state_dict"].items()] == _template_keys()
    assert ckpt["last_epoch"] == 12 and ckpt["lr"] == pytest.approx(1e-3)
    # the lab's schedule: 1.0 until epoch 10, then 0.1 less per epoch
    assert ckpt["tfr"] == pytest.approx(0.7)


def test_a_template_checkpoint_loads_by_its_own_names(tmp_path):
    """Built from the tsv by position (not by our mapping): same weights, same outputs."""
    model = _lab_checkpoint(tmp_path / "ours.pt").eval()
    values = list(model.state_dict().values())
    state_dict = {k: v.clone() for (k, _), v in zip(_template_keys(), values)}
    torch.save(
        dict(state_dict=state_dict, optimizer={}, lr=1e-4, tfr=0.5, last_epoch=7), tmp_path / "tpl.ckpt"
    )
    state = load_checkpoint(tmp_path / "tpl.ckpt")
    assert state["epoch"] == 7
    other = CVAE()
    other.load_state_dict(state["model"], strict=True)
    other.eval()
    x, p = torch.rand(1, 3, 3, 32, 64), torch.rand(1, 3, 3, 32, 64)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(model.rollout(x[:, 0], p, generator=g1), other.rollout(x[:, 0], p, generator=g2))


def test_round_trip_through_the_template_layout_gives_identical_outputs(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["export", "--run-dir", str(run), "--out", str(run / "model.ckpt")]) == 0
    assert (
        main(
            ["export", "--run-dir", str(run), "--checkpoint", "model.ckpt", "--out", str(run / "again.ckpt")]
        )
        == 0
    )
    a, b = (
        torch.load(run / "model.ckpt", weights_only=True),
        torch.load(run / "again.ckpt", weights_only=True),
    )
    assert list(a["state_dict"]) == list(b["state_dict"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    ours, _ = load_trained(run, "last.pt", device="cpu")
    theirs, _ = load_trained(run, "model.ckpt", device="cpu")
    frames = torch.rand(2, 4, 3, 32, 64)
    poses = torch.rand(2, 4, 3, 32, 64)
    for train_mode in (False, True):
        ours.train(train_mode), theirs.train(train_mode)
        torch.manual_seed(3)
        want = ours.clip_loss(frames, poses, beta=1.0, teacher_forcing=True)["loss"]
        torch.manual_seed(3)
        got = theirs.clip_loss(frames, poses, beta=1.0, teacher_forcing=True)["loss"]
        assert torch.equal(want, got)
    # evaluate reads the template layout like its own: the same numbers
    capsys.readouterr()
    assert main(["evaluate", "--run-dir", str(run), "--device", "cpu"]) == 0
    want = capsys.readouterr().out
    assert main(["evaluate", "--run-dir", str(run), "--checkpoint", "model.ckpt", "--device", "cpu"]) == 0
    assert capsys.readouterr().out == want and "validation PSNR" in want
