"""The official dataset layout, decoded once into uint8 tensors and cached outside the dataset.

A training epoch only indexes these tensors: no PIL, no DataLoader. Every problem with the user's
files becomes a one-line :class:`Lab4Error` naming the path.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from lab4.util.errors import Lab4Error
from lab4.util.files import atomic_write_bytes
from lab4.util.paths import absolute, home, named_dataset, synth_folder

FRAME_RE = re.compile(r"^frame(\d+)\.png$")
CACHE_VERSION = 1
LAYOUT = (
    "train/train_img, train/train_label, val/val_img, val/val_label, test/test_img/<k>, test/test_label/<k>"
)


def cache_dir() -> Path:
    return absolute(os.environ["LAB4_CACHE"]) if os.environ.get("LAB4_CACHE") else home() / "data" / "cache"


def default_synth_root(preset: str) -> Path:
    return synth_folder(preset)


def resolve_data_root(data_root: str = "", synth_preset: str = "small", progress: bool = True) -> Path:
    """The user's dataset if one is named (argument, else $LAB4_DATA), else SynthDance, made on demand.

    Always absolute: a relative path is taken from the current folder, where the user typed it.
    """
    data_root = named_dataset(data_root)
    if data_root:
        root = Path(data_root)
        if not root.is_dir():
            raise Lab4Error(f"{root}: dataset folder does not exist (expected the layout {LAYOUT})")
        return root
    root = default_synth_root(synth_preset)
    if not (root / "synthdance.json").is_file():
        from lab4.datasets.synth import make_synthdance

        make_synthdance(root, preset=synth_preset, progress=progress)
    return root


# -- scanning ----------------------------------------------------------------------------------
def _numbered_pngs(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        raise Lab4Error(f"{folder}: missing folder (expected the layout {LAYOUT})")
    out = {}
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        m = FRAME_RE.match(p.name)
        if not m or not p.is_file():
            raise Lab4Error(f"{p}: unexpected file name (expected frame<N>.png)")
        out[int(m.group(1))] = p
    return out


def scan_pairs(img_dir: Path, label_dir: Path) -> list[tuple[Path, Path]]:
    """(frame, pose) paths sorted by N numerically; every frame needs its pose and vice versa."""
    imgs, labels = _numbered_pngs(img_dir), _numbered_pngs(label_dir)
    if not imgs:
        raise Lab4Error(f"{img_dir}: no frame<N>.png files")
    if no_label := sorted(imgs.keys() - labels.keys()):
        raise Lab4Error(f"{imgs[no_label[0]]}: frame has no pose image {label_dir / imgs[no_label[0]].name}")
    if no_frame := sorted(labels.keys() - imgs.keys()):
        raise Lab4Error(
            f"{labels[no_frame[0]]}: pose image has no frame {img_dir / labels[no_frame[0]].name}"
        )
    return [(imgs[n], labels[n]) for n in sorted(imgs)]


def split_dirs(root: Path, split: str) -> tuple[Path, Path]:
    if split not in ("train", "val"):
        raise ValueError(split)
    return root / split / f"{split}_img", root / split / f"{split}_label"


def scan_test(root: Path) -> list[tuple[Path, list[Path]]]:
    """Per test sequence k: its first frame and its poses, in order of k."""
    img_root, label_root = root / "test" / "test_img", root / "test" / "test_label"
    for d in (img_root, label_root):
        if not d.is_dir():
            raise Lab4Error(f"{d}: missing folder (expected the layout {LAYOUT})")
    seqs = sorted(
        (p for p in label_root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    if not seqs:
        raise Lab4Error(f"{label_root}: no test sequences (expected numbered folders 0, 1, ...)")
    out = []
    for seq in seqs:
        poses = _numbered_pngs(seq)
        if not poses:
            raise Lab4Error(f"{seq}: test sequence has no pose images")
        firsts = _numbered_pngs(img_root / seq.name)
        if not firsts:
            raise Lab4Error(f"{img_root / seq.name}: test sequence has no first frame")
        out.append((firsts[min(firsts)], [poses[n] for n in sorted(poses)]))
    return out


# -- decoding ------------------------------------------------------------------------------------
def decode_png(path: Path, H: int, W: int) -> np.ndarray:
    """Any PNG mode (grey, palette, RGBA) -> RGB, resized as the lab does (PIL bilinear) -> (H, W, 3)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.format != "PNG":
                raise Lab4Error(f"{path}: not a PNG file ({im.format})")
            rgb = im.convert("RGB")
    except Lab4Error:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise Lab4Error(
            f"{path}: unreadable or truncated PNG ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if rgb.size != (W, H):
        rgb = rgb.resize((W, H), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def decode_many(paths: list[Path], H: int, W: int, desc: str = "", progress: bool = True) -> torch.Tensor:
    """Decode in threads (PIL releases the GIL while decoding) -> uint8 (N, 3, H, W)."""
    out = np.empty((len(paths), H, W, 3), dtype=np.uint8)

    def work(i):
        out[i] = decode_png(paths[i], H, W)

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        for _ in tqdm(
            pool.map(work, range(len(paths))),
            total=len(paths),
            desc=desc,
            disable=not progress,
            leave=False,
            mininterval=0.5,
        ):
            pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _fingerprint(paths: list[Path], H: int, W: int) -> str:
    """Changes whenever any file is added, removed, rewritten or touched."""
    h = hashlib.sha256(f"v{CACHE_VERSION} {H}x{W}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def load_tensors(
    paths: dict[str, list[Path]], H: int, W: int, tag: str, progress: bool = True, key: str = ""
) -> dict[str, torch.Tensor]:
    """Decode groups of PNGs to uint8 tensors, or reuse the cached decode if no file changed."""
    key = key or _fingerprint([p for group in paths.values() for p in group], H, W)
    cache = cache_dir() / f"{tag}-{key}.pt"
    if cache.is_file():
        try:
            cached = torch.load(cache, weights_only=True)
            if set(cached) == set(paths) and all(len(cached[k]) == len(v) for k, v in paths.items()):
                return cached
        except Exception:
            pass  # a damaged cache is rebuilt, never trusted
    out = {k: decode_many(v, H, W, desc=f"decode {tag}/{k}", progress=progress) for k, v in paths.items()}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(out, buf)
        atomic_write_bytes(cache, buf.getvalue())
    except (OSError, Lab4Error):
        pass  # caching is an optimisation; an unwritable cache folder only costs time
    return out


# -- the splits --------------------------------------------------------------------------------
@dataclass
class Split:
    frames: torch.Tensor  # (N, 3, H, W) uint8
    poses: torch.Tensor  # (N, 3, H, W) uint8
    root: Path
    key: str = ""  # the cache key: changes when any file of the split does

    def __len__(self):
        return len(self.frames)


def _tag(root: Path, split: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', root.resolve().name)[:40]}-{split}"


def _split_paths(root: Path, split: str) -> dict[str, list[Path]]:
    pairs = scan_pairs(*split_dirs(root, split))
    return {"frames": [a for a, _ in pairs], "poses": [b for _, b in pairs]}


def load_split(root, split: str, H: int = 32, W: int = 64, progress: bool = True) -> Split:
    root = absolute(root)
    paths = _split_paths(root, split)
    key = _fingerprint(paths["frames"] + paths["poses"], H, W)
    t = load_tensors(paths, H, W, _tag(root, split), progress, key=key)
    return Split(t["frames"], t["poses"], root, key)


def load_test(
    root, H: int = 32, W: int = 64, progress: bool = True
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per sequence: first frame (3, H, W) uint8 and poses (T, 3, H, W) uint8."""
    root = Path(root)
    seqs = scan_test(root)
    groups = {f"first{k}": [first] for k, (first, _) in enumerate(seqs)}
    groups.update({f"poses{k}": poses for k, (_, poses) in enumerate(seqs)})
    t = load_tensors(groups, H, W, _tag(root, "test"), progress)
    return [(t[f"first{k}"][0], t[f"poses{k}"]) for k in range(len(seqs))]


def load_test_gt(gt_root, H: int = 32, W: int = 64, progress: bool = True) -> list[torch.Tensor]:
    """Hidden test frames (SynthDance's test_gt/<k>/), uint8 (T, 3, H, W) per sequence."""
    gt_root = Path(gt_root)
    if not gt_root.is_dir():
        raise Lab4Error(f"{gt_root}: no test ground truth folder (SynthDance writes <root>/test_gt)")
    seqs = sorted(
        (p for p in gt_root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    if not seqs:
        raise Lab4Error(f"{gt_root}: no numbered sequence folders")
    groups = {f"gt{k}": [v for _, v in sorted(_numbered_pngs(s).items())] for k, s in enumerate(seqs)}
    t = load_tensors(groups, H, W, _tag(gt_root.parent, "test_gt"), progress)
    return [t[f"gt{k}"] for k in range(len(seqs))]


# -- the dataset a run trained on -----------------------------------------------------------------
def dataset_record(train: Split, val: Split) -> dict:
    """What config.json keeps of a run's data: its absolute path and, per split, frame count and cache key."""
    return dict(
        root=str(train.root),
        train=dict(frames=len(train), key=train.key),
        val=dict(frames=len(val), key=val.key),
    )


def _differences(root: Path, record: dict, H: int, W: int) -> list[str]:
    """How the dataset at ``root`` differs from what the run recorded (empty: it matches)."""
    out = []
    for split in ("train", "val"):
        want = record.get(split) or {}
        try:
            paths = _split_paths(root, split)
        except Lab4Error as e:
            return [str(e)]
        if want.get("frames") not in (None, len(paths["frames"])):
            out.append(f"{split} has {len(paths['frames'])} frames, the run trained with {want['frames']}")
        elif want.get("key") and want["key"] != _fingerprint(paths["frames"] + paths["poses"], H, W):
            out.append(f"{split} files were changed since")
    return out


def run_dataset(cfg: dict, run_dir, override: str = "", progress: bool = False) -> Path:
    """The dataset to evaluate a run on: ``override`` if given (a user's --data-root), else the one the run
    trained on, checked against the record in its config.json (``cfg``, as lab4.run.folder.RunDir.dataset
    reads it). Gone or changed: one line naming both paths."""
    run_dir = absolute(run_dir)
    if override:
        return resolve_data_root(override, progress=progress)
    if not cfg:  # a bare checkpoint (e.g. the course template's): $LAB4_DATA, else SynthDance
        return resolve_data_root("", progress=progress)
    record = cfg.get("dataset")
    if not isinstance(record, dict) or not record.get("root"):  # a run from before lab4 kept the record
        return resolve_data_root(cfg.get("data_root") or "", cfg.get("synth_preset", "small"), progress)
    root = Path(record["root"])
    again = " (pass --data-root, or data_root in a notebook, to use another dataset)"
    if not root.is_dir():
        raise Lab4Error(f"{run_dir}: the dataset it trained on, {root}, is gone{again}")
    diff = _differences(root, record, cfg.get("frame_H", 32), cfg.get("frame_W", 64))
    if diff:
        raise Lab4Error(
            f"{run_dir}: the dataset it trained on, {root}, no longer matches ({'; '.join(diff)}){again}"
        )
    return root


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1] (ToTensor's scaling)."""
    return x.float().div_(255.0)


class ClipSampler:
    """The lab's non-overlapping clips of ``clip_len`` frames, shuffled per epoch with a seeded RNG."""

    def __init__(self, n_frames: int, clip_len: int, batch_size: int, seed: int = 0, source: str = "train"):
        self.n_clips = n_frames // clip_len
        if self.n_clips < 1:
            raise Lab4Error(f"{source}: {n_frames} frames, fewer than one clip of {clip_len}")
        self.clip_len, self.batch_size = clip_len, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def n_batches(self, fraction: float = 1.0) -> int:
        """Batches a trainer uses: full ones only, as the lab's drop_last (compile then sees one shape); at
        least one."""
        return max(1, max(1, int(self.n_clips * fraction)) // self.batch_size)

    def batches(self, fraction: float = 1.0) -> list[torch.Tensor]:
        """Clip start indices per batch: the first ``fraction`` of clips (the lab's `partial`), shuffled."""
        n = max(1, int(self.n_clips * fraction))
        order = torch.randperm(n, generator=self.generator) * self.clip_len
        return list(order.split(self.batch_size))

    def gather(self, data: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 and (B,) starts -> (B, T, 3, H, W), by indexing on data's device."""
        idx = starts.to(data.device)[:, None] + torch.arange(self.clip_len, device=data.device)
        return data[idx]
