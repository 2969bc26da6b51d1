"""Writing a SynthDance dataset: plan the sequences, render them in parallel, install atomically.

Each sequence is simulated whole in the parent process (choreography and
ponytail are sequential), then cut into chunks of frames that worker
processes render and write as PNGs. Everything is a pure function of
(seed, split, sequence, frame), so the bytes do not depend on the number of
workers. The dataset is built in `<root>.partial-<pid>` and renamed into
place with its manifest (synthdance.json) last: a crash leaves nothing
behind, and a folder with the manifest is always complete.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import pathlib
import shutil
from typing import Iterator, NamedTuple

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .body import BODY_HEIGHT, JOINT_INDEX, ponytail, skeleton
from .look import LOOKS, WALL, WALLS, control, flicker
from .moves import CHANNEL_INDEX, choreography
from .pose_image import render_pose
from .render import render_frame

PRESETS: dict[str, dict] = {  # frames per split; test = n_test sequences of test_len frames
    "full": dict(n_train=23410, n_val=630, n_test=5, test_len=630),
    "small": dict(n_train=2400, n_val=630, n_test=5, test_len=630),
    "tiny": dict(n_train=64, n_val=24, n_test=5, test_len=24),
    # the positive control: small's (tiny's) poses in a room whose light and wall colour the pose does not
    # determine, worth ~1.6e-3 MSE a frame at up to ~2 nats; lab4.datasets.synth.look has the arithmetic
    "control": dict(n_train=2400, n_val=630, n_test=5, test_len=630, look="control"),
    "control-tiny": dict(n_train=64, n_val=24, n_test=5, test_len=24, look="control"),
}
VERSION = 1  # bump when the output changes, so old datasets are not reused
LOOK_STREAM = 7  # the 4th word of the control look's seed: a stream apart from the pose's
SPLIT_CODE = {"train": 1, "val": 2, "test": 3}  # part of each sequence's random seed


def sequence(
    seed: int, split: str, k: int, n: int, height: int, width: int, look: str = "flicker", look_seed=None
) -> dict:
    """Everything needed to render the n frames of sequence k of a split, in pixels.

    ``look`` (lab4.datasets.synth.look) draws the light and wall: "flicker" from the pose's stream, after the
    choreography, "control" from a stream of its own, ``look_seed`` (default: this sequence's), so that the
    same poses can be lit by another draw."""
    rng = np.random.default_rng([seed, SPLIT_CODE[split], k])
    scale = 0.78 * height / BODY_HEIGHT  # pixels per body unit
    stage_half = max(0.0, 0.5 * width / scale - 0.45)  # body units the dancer may travel
    pose = choreography(rng, n)
    joints = skeleton(pose, stage_half)
    tail = ponytail(joints[:, JOINT_INDEX["tail"]], pose[:, CHANNEL_INDEX["phi"]])
    if look not in LOOKS:
        raise ValueError(f"unknown look {look!r}; valid looks: {', '.join(LOOKS)}")
    stream = np.random.default_rng(
        [seed, SPLIT_CODE[split], k, LOOK_STREAM] if look_seed is None else look_seed
    )
    if look == "flicker":
        light, wall = flicker(rng if look_seed is None else stream, n), None
    else:
        light, wall = control(stream, n)
    origin = np.array([width / 2, 0.92 * height])  # the middle of the stage on the floor, pixels
    out = dict(
        joints=(joints * scale + origin).astype(np.float32),  # (n, len(JOINTS), 2) pixels
        tail=(tail * scale).astype(np.float32),  # (n, 2) pixels
        phi=np.clip(pose[:, CHANNEL_INDEX["phi"]], -1.2, 1.2).astype(np.float32),  # (n,)
        flicker=light.astype(np.float32),  # (n,) the light level, about 1
        scale=scale,
    )
    return out if wall is None else {**out, "wall": wall}  # (n,) index into look.WALLS


class Chunk(NamedTuple):
    """One worker job: some consecutive frames of one sequence and where they go."""

    height: int
    width: int
    seq: dict  # sequence(), sliced to these frames
    image_paths: list[list[str]]  # per frame, every path its RGB image is written to
    label_paths: list[str]  # per frame, its pose image


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG without timestamps; level 1 because encoding time dominates, not disk."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render_chunk(job: Chunk) -> int:
    """Worker: render one chunk of a sequence and write its PNGs; returns frames done."""
    height, width, seq, image_paths, label_paths = job
    for i, (ip, lp) in enumerate(zip(image_paths, label_paths)):
        joints, phi = seq["joints"][i], float(seq["phi"][i])
        if ip:
            data = png_bytes(render_at(seq, i, height, width))
            for p in ip:
                pathlib.Path(p).write_bytes(data)
        pathlib.Path(lp).write_bytes(png_bytes(render_pose(height, width, joints, phi)))
    return len(image_paths)


def render_at(seq: dict, i: int, height: int, width: int) -> np.ndarray:
    """Frame ``i`` of a sequence() (H, W, 3) uint8, in its wall colour where its look has one."""
    wall = WALLS[int(seq["wall"][i])] if "wall" in seq else WALL
    args = (seq["joints"][i], seq["tail"][i], float(seq["phi"][i]), float(seq["flicker"][i]), seq["scale"])
    return render_frame(height, width, *args, wall=wall)


def chunks(tmp: pathlib.Path, cfg: dict, seed, height, width, chunk_len) -> Iterator[Chunk]:
    """Every split's frames, chunk_len at a time, in a fixed order.

    A test frame 0 has two image paths: test_gt and the visible test_img copy."""
    plan = [("train", 0, cfg["n_train"]), ("val", 0, cfg["n_val"])]
    plan += [("test", k, cfg["test_len"]) for k in range(cfg["n_test"])]
    for split, k, n in plan:
        seq = sequence(seed, split, k, n, height, width, look=cfg.get("look", "flicker"))
        for lo in range(0, n, chunk_len):
            hi = min(n, lo + chunk_len)
            part = {key: (v[lo:hi] if isinstance(v, np.ndarray) else v) for key, v in seq.items()}
            if split == "test":
                imgs = [
                    [str(tmp / f"test_gt/{k}/frame{i}.png")]
                    + ([str(tmp / f"test/test_img/{k}/frame0.png")] if i == 0 else [])
                    for i in range(lo, hi)
                ]
                lbls = [str(tmp / f"test/test_label/{k}/frame{i}.png") for i in range(lo, hi)]
            else:
                imgs = [[str(tmp / f"{split}/{split}_img/frame{i}.png")] for i in range(lo, hi)]
                lbls = [str(tmp / f"{split}/{split}_label/frame{i}.png") for i in range(lo, hi)]
            yield Chunk(height, width, part, imgs, lbls)


def check_args(preset, seed, height, width):
    """Fail before touching the disk."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    is_int = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)  # noqa: E731
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, v in (("height", height), ("width", width)):
        if not is_int(v) or v <= 0 or v % 4:
            raise ValueError(f"{name} must be a positive multiple of 4, got {v!r}")
    if width < height:
        raise ValueError(f"width ({width}) must be >= height ({height})")


def is_finished(root: pathlib.Path, want: dict) -> bool:
    """Does root hold a finished dataset with these settings? (the manifest is written last)"""
    try:
        have = json.loads((root / "synthdance.json").read_text())
    except (OSError, ValueError):
        return False
    return all(have.get(k) == v for k, v in want.items())


def make_synthdance(
    root, preset="small", seed=0, height=64, width=128, workers=None, progress=True
) -> pathlib.Path:
    """Write a SynthDance dataset to root (atomically); skip if already there.

    Refuses (FileExistsError) to touch a non-empty root that is not this
    exact dataset; workers defaults to every CPU."""
    check_args(preset, seed, height, width)
    seed, height, width = int(seed), int(height), int(width)
    root = pathlib.Path(root)
    cfg = PRESETS[preset]
    want = dict(generator="SynthDance", version=VERSION, preset=preset, seed=seed, height=height, width=width)
    if root.exists():
        if is_finished(root, want):
            return root
        if not root.is_dir() or any(root.iterdir()):
            raise FileExistsError(
                f"{root} exists and is not a SynthDance {preset} "
                f"seed={seed} {height}x{width} dataset; refusing to touch it"
            )
    tmp = root.parent / f"{root.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)  # our own leftover (same pid), never user data
    try:
        for split in ("train", "val"):
            (tmp / split / f"{split}_img").mkdir(parents=True)
            (tmp / split / f"{split}_label").mkdir(parents=True)
        for k in range(cfg["n_test"]):
            for sub in (f"test/test_img/{k}", f"test/test_label/{k}", f"test_gt/{k}"):
                (tmp / sub).mkdir(parents=True)
        workers = max(1, int(workers or os.cpu_count() or 1))
        total = cfg["n_train"] + cfg["n_val"] + cfg["n_test"] * cfg["test_len"]
        chunk_len = int(np.clip(total // (workers * 16), 16, 256))  # ~16 chunks a worker
        jobs = chunks(tmp, cfg, seed, height, width, chunk_len)
        with tqdm(total=total, desc=f"SynthDance[{preset}]", unit="frame", disable=not progress) as bar:
            if workers == 1:
                for job in jobs:
                    bar.update(render_chunk(job))
            else:
                with mp.get_context().Pool(workers) as pool:
                    for done in pool.imap_unordered(render_chunk, jobs):
                        bar.update(done)
        (tmp / "synthdance.json").write_text(json.dumps({**want, **cfg}, indent=2) + "\n")
        try:
            os.rename(tmp, root)  # atomic; also replaces an empty directory
        except OSError:
            if is_finished(root, want):  # a concurrent run finished first
                shutil.rmtree(tmp)
                return root
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
