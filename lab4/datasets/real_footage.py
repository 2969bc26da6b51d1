"""A real-footage stand-in for the lab's dataset: camera frames that a Debian package ships, in the official
layout.

    python -m lab4 real-footage build --out data/real-vtest [--video PATH] [--val-frames 630] [--frames N]

SynthDance is drawn; this checks the model on real camera frames. The footage is OpenCV's sample video
``vtest.avi`` (795 frames, 768x576 at 10 fps, a static camera over a campus road with pedestrians walking;
OpenCV's Apache-2.0/BSD-3 licence), installed by Debian's ``opencv-doc`` (``make real-footage``) and read
with PyAV (a dependency of lab4). Nothing is downloaded at run time.

Frames are squashed from 4:3 to SynthDance's 2:1 (64x128; the loader resizes to the profile's 32x64).
The first frames are train, the last ``val_frames`` are val, so the validation rollout starts from a frame
the model never saw and its walkers are others. ``test/`` holds the val video again as the one test
sequence (first frame + conditions), so that ``lab4 predict`` runs; there is no more footage to hold out.

Real footage has no pose labels (and a pose estimator would need downloaded weights), so each frame's
condition image is a coarse **motion silhouette** of that same frame: the pixels that differ from the
scene's background (the per-pixel median of the *train* frames), decided per 4x4 cell and drawn white on
black. Like the lab's pose image it is computed from the target frame and leaks where the bodies are in
it, not what they look like.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from lab4.util.errors import Lab4Error

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
INSTALL_HINT = "run `make real-footage` (Debian's opencv-doc ships it; or `apt-get install opencv-doc`)"
CELL = 4  # condition resolution: one decision per CELL x CELL pixels
THRESHOLD = 0.06  # mean |frame - background| over a cell (max over RGB, in [0, 1]) that counts as moving
VERSION = 1


def read_video(path: Path, height: int, width: int, limit: int = 0, progress: bool = True) -> np.ndarray:
    """Decode a video file -> uint8 (N, height, width, 3), PIL-bilinear resized (squashed to the 2:1
    frame)."""
    try:
        import av
    except ImportError:
        raise Lab4Error("PyAV is not installed: pip install -e . (make setup installs it)") from None
    path = Path(path)
    if not path.is_file():
        raise Lab4Error(f"{path}: video not found; {INSTALL_HINT if path == VTEST else 'pass --video PATH'}")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise Lab4Error(f"{path}: no video stream")
            stream = container.streams.video[0]
            total = limit or stream.frames or None
            with tqdm(
                total=total, desc=f"decode {path.name}", unit="frame", disable=not progress, leave=False
            ) as bar:
                for frame in container.decode(stream):
                    im = frame.to_image().resize((width, height), Image.BILINEAR)
                    frames.append(np.asarray(im.convert("RGB"), dtype=np.uint8))  # (H, W, 3)
                    bar.update(1)
                    if limit and len(frames) >= limit:
                        break
    except Lab4Error:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise Lab4Error(
            f"{path}: cannot decode video ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if not frames:
        raise Lab4Error(f"{path}: no frames decoded")
    return np.stack(frames)  # (N, H, W, 3)


def background(frames: np.ndarray) -> np.ndarray:
    """The static scene: per-pixel median of (N, H, W, 3) uint8 frames -> (H, W, 3) float32 in [0, 1]."""
    return np.median(frames, axis=0).astype(np.float32) / 255.0


def silhouettes(
    frames: np.ndarray, bg: np.ndarray, cell: int = CELL, threshold: float = THRESHOLD
) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N, H, W, 3) uint8 condition images: white where a cell moves, else
    black."""
    n, h, w, _ = frames.shape
    if h % cell or w % cell:
        raise Lab4Error(f"frame size {h}x{w} must be a multiple of the condition cell {cell}")
    diff = np.abs(frames.astype(np.float32) / 255.0 - bg).max(axis=3)  # (N, H, W)
    cells = diff.reshape(n, h // cell, cell, w // cell, cell).mean(axis=(2, 4))  # (N, H/cell, W/cell)
    mask = (cells > threshold).repeat(cell, axis=1).repeat(cell, axis=2)  # (N, H, W) bool
    return np.repeat(mask[..., None], 3, axis=3).astype(np.uint8) * 255  # (N, H, W, 3)


def _write(folder: Path, images: np.ndarray, bar) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"frame{i}.png")
        bar.update(1)


def build(
    out,
    video=None,
    val_frames: int = 630,
    frames: int = 0,
    height: int = 64,
    width: int = 128,
    progress: bool = True,
) -> Path:
    """Write the dataset to ``out`` (atomically: a partial folder is renamed at the end); skip if it is
    there."""
    out, video = Path(out), Path(video) if video else VTEST
    if val_frames < 2:
        raise Lab4Error(f"--val-frames {val_frames}: need at least 2 (a first frame and one to predict)")
    if frames < 0 or height <= 0 or width <= 0 or height % CELL or width % CELL:
        raise Lab4Error(f"--frames must be >= 0 and --height/--width positive multiples of {CELL}")
    want = dict(
        generator="lab4.datasets.real_footage",
        version=VERSION,
        video=str(video.resolve()),
        frames=frames,
        val_frames=val_frames,
        height=height,
        width=width,
        cell=CELL,
        threshold=THRESHOLD,
    )
    meta = out / "real_footage.json"
    if out.exists():
        if meta.is_file() and all(json.loads(meta.read_text()).get(k) == v for k, v in want.items()):
            return out
        if not out.is_dir() or any(out.iterdir()):
            raise Lab4Error(f"{out}: exists and is not this real-footage dataset; refusing to touch it")
    video_frames = read_video(video, height, width, limit=frames, progress=progress)  # (N, H, W, 3)
    n_train = len(video_frames) - val_frames
    if n_train < 2:
        raise Lab4Error(
            f"{video}: {len(video_frames)} frames, too few for {val_frames} val frames and a train split"
        )
    train, val = video_frames[:n_train], video_frames[n_train:]
    bg = background(train)  # from train frames only: a val condition sees only its own frame
    tmp = out.parent / f"{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # our own leftover (same pid), never user data
    try:
        with tqdm(
            total=2 * len(video_frames) + val_frames + 1,
            desc=f"real footage -> {out.name}",
            unit="png",
            disable=not progress,
        ) as bar:
            for split, x in (("train", train), ("val", val)):
                _write(tmp / split / f"{split}_img", x, bar)
                _write(tmp / split / f"{split}_label", silhouettes(x, bg), bar)
            _write(tmp / "test" / "test_img" / "0", val[:1], bar)
            _write(tmp / "test" / "test_label" / "0", silhouettes(val, bg), bar)
        moving = float(silhouettes(video_frames, bg).mean() / 255)
        (tmp / "real_footage.json").write_text(
            json.dumps(
                {
                    **want,
                    "n_train": n_train,
                    "n_val": val_frames,
                    "moving_fraction": round(moving, 4),
                    "source": "OpenCV samples/data/vtest.avi via Debian opencv-doc"
                    if video == VTEST
                    else str(video),
                },
                indent=2,
            )
            + "\n"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
