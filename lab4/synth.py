"""SynthDance: a procedurally generated stand-in for the Lab 4 dance-video dataset.

The course data (one dancer, RGB frames + OpenPose label images) cannot be
downloaded here, so we render a dancer with the same folder layout, the same
kind of pose conditioning, and some appearance the pose does not determine
(a swinging ponytail and a slow light flicker) so a latent has work to do.

Everything is a pure function of (seed, split, sequence, frame): choreography
and ponytail dynamics are simulated per sequence in the parent process, and
frames are rendered in parallel by chunks, so output bytes do not depend on
the number of workers.
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import pathlib
import shutil

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

PRESETS: dict[str, dict] = {
    "full": dict(n_train=23410, n_val=630, n_test=5, test_len=630),
    "small": dict(n_train=2400, n_val=630, n_test=5, test_len=630),
    "tiny": dict(n_train=64, n_val=24, n_test=5, test_len=24),
}
VERSION = 1
FPS = 30.0
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}

# ---------------------------------------------------------------- choreography
# Pose channels. Angles in radians; abd/hip = raise away from the body in the
# frontal plane (0 = hanging down), el/kn = bend of the distal segment.
CH = ["x", "phi", "lift", "tilt", "head", "abd_r", "el_r", "abd_l", "el_l",
      "hip_r", "kn_r", "hip_l", "kn_l"]
C = {n: i for i, n in enumerate(CH)}
NEUTRAL = dict(abd_r=0.15, el_r=0.25, abd_l=0.15, el_l=0.25,
               hip_r=0.08, kn_r=0.06, hip_l=0.08, kn_l=0.06)
MOVES = ["sway", "wave", "arms_up", "kick", "squat", "step", "turn", "point", "hop", "roll"]
MOVE_P = np.array([1, 1.2, 0.8, 1, 1, 1.6, 1.2, 1, 0.7, 0.9])


def _move(name, t, w, amp, side):
    """Joint-angle channels of one move at local times t (s); w = beat rad/s."""
    out = np.zeros((len(t), len(CH)))  # (n, D)
    for k, v in NEUTRAL.items():
        out[:, C[k]] = v
    s1, s2 = np.sin(w * t / 2), np.sin(w * t)
    bounce = (1 - np.cos(w * t)) / 2
    R, L = ("r", "l") if side > 0 else ("l", "r")  # active / other side
    if name == "sway":
        out[:, C["tilt"]] = 0.12 * amp * s1
        out[:, C["head"]] = -0.1 * amp * s1
        out[:, C["abd_r"]] = 0.4 + 0.25 * amp * s1
        out[:, C["abd_l"]] = 0.4 - 0.25 * amp * s1
        out[:, [C["el_r"], C["el_l"]]] = 0.6
        out[:, [C["kn_r"], C["kn_l"]]] = 0.06 + 0.18 * amp * bounce[:, None]
    elif name == "wave":
        for sd, ph in (("r", 0.0), ("l", np.pi)):
            out[:, C["abd_" + sd]] = 1.5 + 0.35 * amp * np.sin(w * t / 2 + ph)
            out[:, C["el_" + sd]] = 0.8 * amp * np.sin(w * t / 2 + ph - 1.2)
        out[:, C["tilt"]] = 0.06 * amp * s1
    elif name == "arms_up":
        out[:, C["abd_r"]] = 2.6 + 0.18 * amp * s1
        out[:, C["abd_l"]] = 2.6 - 0.18 * amp * s1
        out[:, [C["el_r"], C["el_l"]]] = 0.3 + 0.25 * amp * bounce[:, None]
        out[:, C["tilt"]] = 0.1 * amp * s1
        out[:, [C["kn_r"], C["kn_l"]]] = 0.05 + 0.15 * bounce[:, None]
    elif name == "kick":
        pulse = np.maximum(0, s1) ** 2
        out[:, C["hip_" + R]] = 0.08 + 1.05 * amp * pulse
        out[:, C["kn_" + R]] = 0.1 + 0.5 * pulse * (1 - pulse)
        out[:, C["kn_" + L]] = 0.06 + 0.12 * pulse
        out[:, C["tilt"]] = -side * 0.2 * amp * pulse
        out[:, [C["abd_r"], C["abd_l"]]] = 1.15
        out[:, [C["el_r"], C["el_l"]]] = 0.35
    elif name == "squat":
        p = (1 - np.cos(w * t / 2)) / 2
        out[:, [C["hip_r"], C["hip_l"]]] = (0.15 + 0.5 * amp * p)[:, None]
        out[:, [C["kn_r"], C["kn_l"]]] = (0.1 + 1.15 * amp * p)[:, None]
        out[:, [C["abd_r"], C["abd_l"]]] = (0.9 + 0.6 * p)[:, None]
        out[:, [C["el_r"], C["el_l"]]] = (0.3 + 1.0 * p)[:, None]
    elif name == "step":
        for sd, ph in (("r", 0.0), ("l", np.pi)):
            g = np.sin(w * t + ph)
            out[:, C["hip_" + sd]] = 0.12 + 0.18 * amp * (1 + g) / 2
            out[:, C["kn_" + sd]] = 0.08 + 0.35 * amp * np.maximum(0, g) ** 2
            out[:, C["abd_" + sd]] = 0.45 + 0.3 * amp * np.sin(w * t + ph + np.pi)
        out[:, C["tilt"]] = 0.05 * s2
    elif name == "turn":
        out[:, [C["abd_r"], C["abd_l"]]] = (1.25 + 0.2 * amp * s1)[:, None]
        out[:, [C["el_r"], C["el_l"]]] = 0.5
        out[:, [C["kn_r"], C["kn_l"]]] = 0.06 + 0.15 * bounce[:, None]
    elif name == "point":
        out[:, C["abd_" + R]] = 1.5 + 1.0 * amp * s1
        out[:, C["abd_" + L]] = 1.5 - 1.0 * amp * s1
        out[:, [C["el_r"], C["el_l"]]] = 0.15
        out[:, C["tilt"]] = 0.1 * amp * s1
        out[:, C["hip_r"]] = 0.12 + 0.08 * s1
        out[:, C["hip_l"]] = 0.12 - 0.08 * s1
    elif name == "hop":
        air = np.maximum(0, s1) ** 2  # one hop every two beats
        out[:, C["lift"]] = 0.06 * amp * air
        out[:, [C["kn_r"], C["kn_l"]]] = (0.06 + 0.45 * np.maximum(0, -s1) ** 2)[:, None]
        out[:, [C["abd_r"], C["abd_l"]]] = (0.5 + 1.2 * air)[:, None]
        out[:, [C["hip_r"], C["hip_l"]]] = (0.1 + 0.15 * air)[:, None]
    elif name == "roll":
        out[:, C["tilt"]] = 0.2 * amp * s1
        out[:, C["head"]] = 0.15 * amp * np.sin(w * t / 2 + 1.0)
        out[:, C["abd_r"]] = 0.9 + 0.4 * amp * np.sin(w * t / 2 + 0.5)
        out[:, C["abd_l"]] = 0.9 - 0.4 * amp * np.sin(w * t / 2 + 0.5)
        out[:, [C["el_r"], C["el_l"]]] = 1.2
        out[:, [C["hip_r"], C["hip_l"]]] = 0.12
    return out


def choreography(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random move sequence, cosine cross-faded, plus slow noise -> (n, D) poses."""
    t = np.arange(n) / FPS
    w = 2 * np.pi * rng.uniform(96, 132) / 60  # one tempo per sequence
    fade = 0.4
    pose = np.zeros((n, len(CH)))
    start, x0, phi0, prev = 0.0, rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.4), -1
    while prev < 0 or start - fade / 2 <= t[-1]:  # until the weights cover every frame
        p = MOVE_P.copy()
        if prev >= 0:
            p[prev] = 0  # never the same move twice in a row
        m = int(rng.choice(len(MOVES), p=p / p.sum()))
        dur = rng.uniform(1.0, 4.0)
        amp, side = rng.uniform(0.7, 1.2), rng.choice([-1, 1])
        x1, phi1 = x0, 0.7 * phi0  # facing drifts back toward the camera
        if MOVES[m] == "step":
            d = rng.uniform(0.4, 0.9) * (1 if x0 < rng.uniform(-0.6, 0.6) else -1)
            x1 = float(np.clip(x0 + d, -1, 1))
        elif MOVES[m] == "turn":
            phi1 = float(np.clip(phi0 + rng.choice([-1, 1]) * rng.uniform(0.6, 1.4), -1.15, 1.15))
        lo, hi = (start - fade / 2 if prev >= 0 else -1.0), start + dur + fade / 2
        idx = np.nonzero((t >= lo) & (t < hi))[0]
        if idx.size:
            tl = t[idx] - start
            wt = np.ones_like(tl)
            if prev >= 0:  # ramp in; the previous move's ramp out is its mirror
                wt = 0.5 - 0.5 * np.cos(np.pi * np.clip((tl + fade / 2) / fade, 0, 1))
            wt *= 0.5 + 0.5 * np.cos(np.pi * np.clip((tl - dur + fade / 2) / fade, 0, 1))
            vals = _move(MOVES[m], tl + rng.uniform(0, 2 * np.pi / w), w, amp, side)
            ease = 0.5 - 0.5 * np.cos(np.pi * np.clip(tl / dur, 0, 1))
            vals[:, C["x"]] = x0 + (x1 - x0) * ease
            vals[:, C["phi"]] = phi0 + (phi1 - phi0) * ease
            pose[idx] += wt[:, None] * vals
        start, x0, phi0, prev = start + dur, x1, phi1, m
    for c in range(C["tilt"], len(CH)):  # slow noise so repeats never look identical
        for _ in range(3):
            f, ph = rng.uniform(0.1, 0.6), rng.uniform(0, 2 * np.pi)
            pose[:, c] += 0.04 * np.sin(2 * np.pi * f * t + ph)
    return pose


# ------------------------------------------------------------------- skeleton
# Body lengths in units of body height; J indexes the internal joint array.
J = {n: i for i, n in enumerate(
    ["pelvis", "neck", "head", "sh_r", "el_r", "wr_r", "sh_l", "el_l", "wr_l",
     "hip_r", "kn_r", "an_r", "hip_l", "kn_l", "an_l", "toe_r", "toe_l",
     "nose", "eye_r", "eye_l", "ear_r", "ear_l", "hand_r", "hand_l", "tail"])}
TORSO, SHW, HIPW, UARM, FARM, THIGH, SHIN = 0.30, 0.105, 0.068, 0.16, 0.15, 0.24, 0.23
HEAD_R, HEAD_UP, SOLE, BODY_H = 0.068, 0.105, 0.03, 0.975
SIDES = (("r", -1.0), ("l", 1.0))  # the dancer's right is image-left when facing us


def skeleton(pose: np.ndarray, stage_half: float) -> np.ndarray:
    """(n, D) pose channels -> (n, len(J), 2) joints in body units, floor at y=0, y down."""
    n = len(pose)
    g = {k: pose[:, i] for k, i in C.items()}
    phi = np.clip(g["phi"], -1.2, 1.2)
    c, sn = np.cos(phi), np.sin(phi)  # 2.5D turn: lateral offsets shrink by cos(phi)
    tau = g["tilt"]
    up = np.stack([np.sin(tau), -np.cos(tau)], -1)  # (n, 2) torso axis
    rt = np.stack([np.cos(tau), np.sin(tau)], -1)   # (n, 2) torso lateral axis
    P = np.zeros((n, len(J), 2))
    P[:, J["neck"]] = TORSO * up
    hd = g["tilt"] + g["head"]
    hup = np.stack([np.sin(hd), -np.cos(hd)], -1)
    P[:, J["head"]] = P[:, J["neck"]] + HEAD_UP * hup

    def local(a, d, base, frame=True):  # lateral a (squashed), down d
        if frame:
            return base + (a * c)[:, None] * rt - d[:, None] * up
        return base + np.stack([a * c, d], -1)

    for sd, s in SIDES:
        sh = P[:, J["neck"]] + 0.015 * -up + (s * SHW * c)[:, None] * rt
        P[:, J["sh_" + sd]] = sh
        a1, a2 = g["abd_" + sd], g["abd_" + sd] + g["el_" + sd]
        P[:, J["el_" + sd]] = el = local(s * UARM * np.sin(a1), UARM * np.cos(a1), sh)
        P[:, J["wr_" + sd]] = wr = local(s * FARM * np.sin(a2), FARM * np.cos(a2), el)
        P[:, J["hand_" + sd]] = local(s * 0.03 * np.sin(a2), 0.03 * np.cos(a2), wr)
        hip = np.stack([s * HIPW * c * np.cos(tau / 2), s * HIPW * np.sin(tau / 2)], -1)
        P[:, J["hip_" + sd]] = hip
        h1, h2 = g["hip_" + sd], g["hip_" + sd] - g["kn_" + sd]
        P[:, J["kn_" + sd]] = kn = local(s * THIGH * np.sin(h1), THIGH * np.cos(h1), hip, False)
        P[:, J["an_" + sd]] = an = local(s * SHIN * np.sin(h2), SHIN * np.cos(h2), kn, False)
        P[:, J["toe_" + sd]] = an + np.stack([s * 0.03 * c + 0.055 * sn, np.full(n, 0.02)], -1)
    # face points on the head sphere: azimuth phi is the nose, ears at +-90 deg
    rot = np.stack([np.cos(hd), -np.sin(hd), np.sin(hd), np.cos(hd)], -1).reshape(n, 2, 2)

    def on_head(az, dy, rad=HEAD_R):
        v = np.stack([rad * np.sin(az), np.full(n, dy)], -1)
        return P[:, J["head"]] + np.einsum("nij,nj->ni", rot, v)

    P[:, J["nose"]] = on_head(phi, 0.2 * HEAD_R, 0.9 * HEAD_R)
    for sd, s in SIDES:
        P[:, J["eye_" + sd]] = on_head(phi + s * 0.5, -0.1 * HEAD_R, 0.95 * HEAD_R)
        P[:, J["ear_" + sd]] = on_head(phi + s * np.pi / 2, 0.0)
    P[:, J["tail"]] = on_head(phi + np.pi, -0.55 * HEAD_R, 0.8 * HEAD_R)
    # plant the lowest foot on the floor, then lift for jumps, then place on stage
    low = np.maximum(P[:, J["an_r"], 1], P[:, J["an_l"], 1]) + SOLE
    P[..., 1] -= (low + g["lift"])[:, None]
    P[..., 0] += (g["x"] * stage_half)[:, None]
    return P


def ponytail(anchor: np.ndarray, phi: np.ndarray, length=0.14) -> np.ndarray:
    """Damped-spring ponytail tip offset (n, 2), driven by the head's acceleration."""
    n = len(anchor)
    acc = np.zeros_like(anchor)  # (n, 2) anchor acceleration, units/s^2
    if n > 2:
        acc[1:-1] = (anchor[2:] - 2 * anchor[1:-1] + anchor[:-2]) * FPS * FPS
    k, damp, sub = (2 * np.pi * 1.4) ** 2, 2 * 0.15 * 2 * np.pi * 1.4, 4
    h = 1.0 / FPS / sub
    rest = np.stack([-0.5 * np.sin(phi) * length, np.full(n, 0.9 * length)], -1)
    ox, oy, vx, vy = float(rest[0, 0]), float(rest[0, 1]), 0.0, 0.0
    out = np.zeros((n, 2))
    for i in range(n):
        rx, ry, ax, ay = rest[i, 0], rest[i, 1], acc[i, 0], acc[i, 1]
        for _ in range(sub):
            vx += (-k * (ox - rx) - damp * vx - ax) * h
            vy += (-k * (oy - ry) - damp * vy - ay) * h
            ox, oy = ox + vx * h, oy + vy * h
        r = (ox * ox + oy * oy) ** 0.5  # keep the hair roughly inextensible
        f = min(max(r, 0.8 * length), 1.05 * length) / max(r, 1e-9)
        ox, oy = ox * f, oy * f
        out[i] = ox, oy
    return out


def sequence(seed: int, split: str, k: int, n: int, height: int, width: int) -> dict:
    """Everything needed to render frames of one sequence, in pixels."""
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], k])
    scale = 0.78 * height / BODY_H  # pixels per body unit
    stage_half = max(0.0, 0.5 * width / scale - 0.45)
    pose = choreography(rng, n)
    P = skeleton(pose, stage_half)
    tail = ponytail(P[:, J["tail"]], pose[:, C["phi"]])
    t = np.arange(n) / FPS
    f1, f2 = rng.uniform(0.1, 0.4), rng.uniform(0.6, 1.3)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    flicker = 1 + 0.025 * np.sin(2 * np.pi * f1 * t + p1) + 0.01 * np.sin(2 * np.pi * f2 * t + p2)
    origin = np.array([width / 2, 0.92 * height])
    return dict(joints=(P * scale + origin).astype(np.float32),  # (n, J, 2) pixels
                tail=(tail * scale).astype(np.float32),          # (n, 2) pixels
                phi=np.clip(pose[:, C["phi"]], -1.2, 1.2).astype(np.float32),
                flicker=flicker.astype(np.float32), scale=scale)


# ------------------------------------------------------------------ rendering
SKIN, HAIR = np.array([226, 178, 146], np.float32), np.array([58, 36, 26], np.float32)
SHIRT, PANTS, SHOES = (np.array(c, np.float32) for c in ([200, 52, 70], [42, 48, 78], [28, 26, 30]))
LIGHT = np.array([-0.45, -0.55, 0.70]) / np.linalg.norm([-0.45, -0.55, 0.70])
LX, LY, LZ = (float(v) for v in LIGHT)  # key light from the upper left, towards us
_BG_CACHE: dict = {}
_GRID = np.arange(1 << 15, dtype=np.float32) + 0.5  # pixel-centre coordinates


def background(height: int, width: int) -> np.ndarray:
    """Light wall with a vertical gradient, baseboard, wooden floor -> (H, W, 3) float32."""
    if (height, width) not in _BG_CACHE:
        y = (np.arange(height)[:, None, None] + 0.5) / height  # (H, 1, 1)
        x = (np.arange(width)[None, :, None] + 0.5) / width    # (1, W, 1)
        hz = 0.6  # horizon: where the wall meets the floor
        wall = np.array([236, 232, 224.]) * (1.0 - 0.1 * y / hz)
        fy = np.clip((y - hz) / (1 - hz), 1e-3, 1)  # 0 at the horizon, 1 at the bottom
        floor = np.array([168, 130, 98.]) * (0.9 + 0.15 * fy)
        board = ((x - 0.5) / fy * 0.5 + 0.5) * 14 % 1  # boards converge to a far point
        floor = floor * (1 - 0.05 * (np.abs(board - 0.5) < 0.06))
        bg = np.where(y < hz, wall, floor)
        bg = np.where((y >= hz - 0.035) & (y < hz), np.array([150, 140, 130.]), bg)
        _BG_CACHE[(height, width)] = np.ascontiguousarray(bg, np.float32)  # (H, W, 3)
    return _BG_CACHE[(height, width)]


def _capsule(img, a, b, ra, rb, color):
    """Composite a tapered, Lambert-shaded, anti-aliased capsule a->b into img in place."""
    ax, ay, bx, by = float(a[0]), float(a[1]), float(b[0]), float(b[1])
    rmax = max(ra, rb) + 1.0
    H, W = img.shape[:2]
    x0, x1 = max(0, int(min(ax, bx) - rmax)), min(W, int(max(ax, bx) + rmax + 1))
    y0, y1 = max(0, int(min(ay, by) - rmax)), min(H, int(max(ay, by) + rmax + 1))
    if x0 >= x1 or y0 >= y1:
        return
    px = _GRID[None, x0:x1] - ax  # (1, w) pixel centres relative to a
    py = _GRID[y0:y1, None] - ay  # (h, 1)
    dx, dy = bx - ax, by - ay
    inv = 1.0 / max(dx * dx + dy * dy, 1e-6)
    tt = np.minimum(np.maximum(px * (dx * inv) + py * (dy * inv), 0), 1)  # (h, w)
    nx, ny = px - tt * dx, py - tt * dy  # offset from the axis
    r = ra + (rb - ra) * tt if ra != rb else ra
    d2 = nx * nx + ny * ny
    cov = np.minimum(np.maximum(r + 0.5 - np.sqrt(d2), 0), 1)  # (h, w) coverage
    rr = 1 / r
    nz = np.sqrt(np.maximum(1 - d2 * (rr * rr), 0))  # unit normal (nx, ny, nz) / r
    lam = np.maximum((nx * LX + ny * LY) * rr + nz * LZ, 0)  # Lambert term
    shade = (0.5 + 0.6 * lam) * cov
    patch = img[y0:y1, x0:x1]
    patch *= (1 - cov)[..., None]
    patch += shade[..., None] * color


def _torso(img, sh_r, sh_l, hip_r, hip_l, color):
    """Convex shirt polygon with anti-aliased edges and cylindrical shading."""
    mid_r, mid_l = 0.4 * sh_r + 0.6 * hip_r, 0.4 * sh_l + 0.6 * hip_l
    waist = 0.5 * (mid_r + mid_l)  # pinch the waist a little
    mid_r, mid_l = waist + 0.88 * (mid_r - waist), waist + 0.88 * (mid_l - waist)
    poly = np.array([sh_r, sh_l, mid_l, hip_l, hip_r, mid_r], np.float32)  # (6, 2)
    H, W = img.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(0)) - 1, 0).astype(int)
    x1, y1 = np.minimum(np.ceil(poly.max(0)) + 2, [W, H]).astype(int)
    if x0 >= x1 or y0 >= y1:
        return
    px = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    py = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    area = np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
    d = np.full((y1 - y0, x1 - x0), -1e9, np.float32)
    for i in range(len(poly)):
        e = poly[(i + 1) % len(poly)] - poly[i]
        nrm = np.array([e[1], -e[0]]) * (1 if area > 0 else -1) / max(np.hypot(*e), 1e-6)
        d = np.maximum(d, (px - poly[i, 0]) * nrm[0] + (py - poly[i, 1]) * nrm[1])
    cov = np.clip(0.5 - d, 0, 1)[..., None]
    axis_a, axis_b = 0.5 * (sh_r + sh_l), 0.5 * (hip_r + hip_l)
    ax = axis_b - axis_a
    half = max(0.5 * np.hypot(*(sh_l - sh_r)), 1.0)
    u = ((px - axis_a[0]) * ax[1] - (py - axis_a[1]) * ax[0]) / max(np.hypot(*ax), 1e-6) / half
    u = np.clip(-u, -1, 1)
    shade = 0.5 + 0.6 * np.clip(u * LIGHT[0] + np.sqrt(1 - u * u) * LIGHT[2] + 0.2, 0, 1)
    patch = img[y0:y1, x0:x1]
    patch += cov * (shade[..., None] * color - patch)


def render_frame(height, width, P, tail, phi, flicker, scale) -> np.ndarray:
    """One RGB frame (H, W, 3) uint8 from pixel joints P (J, 2)."""
    img = background(height, width).copy()
    u = scale
    # soft floor shadow that follows the feet and fades while jumping
    feet = P[[J["an_r"], J["an_l"]]]
    cx, floor_y = feet[:, 0].mean(), 0.92 * height
    lift = max(0.0, floor_y - u * SOLE - feet[:, 1].max())
    ax_ = abs(feet[0, 0] - feet[1, 0]) / 2 + 0.16 * u
    xs = (np.arange(width) + 0.5 - cx) / ax_
    ys = (np.arange(height) + 0.5 - floor_y - 0.005 * u) / (0.045 * u)
    sh = np.exp(-2 * (xs[None, :] ** 2 + ys[:, None] ** 2)) * 0.35 / (1 + 10 * lift / u)
    img *= (1 - sh)[..., None]
    q = lambda n: P[J[n]]  # noqa: E731
    # ponytail: quadratic Bezier from the back of the head, three tapered pieces
    a = q("tail")
    tip = a + tail
    ctrl = a + np.array([0.35 * tail[0], 0.6 * np.hypot(*tail)])
    pts = [(1 - s) ** 2 * a + 2 * s * (1 - s) * ctrl + s * s * tip for s in (0, 0.33, 0.66, 1)]
    for i in range(3):
        _capsule(img, pts[i], pts[i + 1], (0.032 - 0.006 * i) * u, (0.026 - 0.006 * i) * u, HAIR)
    far = 1 if phi > 0.2 else (-1 if phi < -0.2 else 0)  # side turned away from us
    dim = 0.8

    def leg(sd, k=1.0):
        _capsule(img, q("hip_" + sd), q("kn_" + sd), 0.05 * u, 0.041 * u, PANTS * k)
        _capsule(img, q("kn_" + sd), q("an_" + sd), 0.041 * u, 0.032 * u, PANTS * k)
        _capsule(img, q("an_" + sd), q("toe_" + sd), 0.026 * u, 0.024 * u, SHOES * k)

    def arm(sd, k=1.0):
        _capsule(img, q("sh_" + sd), q("el_" + sd), 0.036 * u, 0.028 * u, SHIRT * k)
        _capsule(img, q("el_" + sd), q("wr_" + sd), 0.025 * u, 0.019 * u, SKIN * k)
        _capsule(img, q("wr_" + sd), q("hand_" + sd), 0.024 * u, 0.024 * u, SKIN * k)

    for sd, s in SIDES:
        if s == far:
            arm(sd, dim)
    for sd, s in SIDES:
        leg(sd, dim if s == far else 1.0)
    _capsule(img, q("hip_r"), q("hip_l"), 0.06 * u, 0.06 * u, PANTS)
    _capsule(img, q("neck"), q("head"), 0.03 * u, 0.03 * u, SKIN)
    c = abs(np.cos(phi))
    shr, shl = q("sh_r"), q("sh_l")
    out = (shl - shr) / max(np.hypot(*(shl - shr)), 1e-6) * 0.035 * u
    _torso(img, shr - out, shl + out, q("hip_r") - out * 0.9, q("hip_l") + out * 0.9, SHIRT)
    _capsule(img, shr, shl, 0.04 * u, 0.04 * u, SHIRT)
    hc = q("head")
    back = (hc - q("nose")) / max(np.hypot(*(hc - q("nose"))), 1e-6)
    up = (hc - q("neck")) / max(np.hypot(*(hc - q("neck"))), 1e-6)
    hair_c = hc + (0.18 * up + 0.22 * back) * HEAD_R * u
    _capsule(img, hair_c, hair_c, 1.02 * HEAD_R * u, 1.02 * HEAD_R * u, HAIR)
    face = hc - 0.12 * up * HEAD_R * u - 0.1 * back * HEAD_R * u
    _capsule(img, face, face, 0.93 * HEAD_R * u, 0.93 * HEAD_R * u, SKIN)
    fringe = hc + 0.6 * up * HEAD_R * u
    _capsule(img, fringe - 0.45 * c * HEAD_R * u * np.array([up[1], -up[0]]),
             fringe + 0.45 * c * HEAD_R * u * np.array([up[1], -up[0]]),
             0.3 * HEAD_R * u, 0.3 * HEAD_R * u, HAIR)
    for sd, s in SIDES:  # eyes only where they face the camera
        if np.cos(phi + s * 0.5) > 0.2:
            e = q("eye_" + sd)
            _capsule(img, e, e, 0.012 * u, 0.012 * u, HAIR * 0.6)
    for sd, s in SIDES:
        if s != far:
            arm(sd)
    img *= flicker
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# OpenPose COCO-18: nose, neck, r sho/elb/wri, l sho/elb/wri, r hip/knee/ank,
# l hip/knee/ank, r eye, l eye, r ear, l ear; limbs and palette as in OpenPose.
KP = ["nose", "neck", "sh_r", "el_r", "wr_r", "sh_l", "el_l", "wr_l", "hip_r", "kn_r",
      "an_r", "hip_l", "kn_l", "an_l", "eye_r", "eye_l", "ear_r", "ear_l"]
LIMBS = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
         (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17)]
COLORS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
          (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
          (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85)]
_SS = 4  # supersampling of the label drawing
_ELL = np.stack([np.cos(np.linspace(0, 2 * np.pi, 24, endpoint=False)),
                 np.sin(np.linspace(0, 2 * np.pi, 24, endpoint=False))], -1)  # (24, 2)


def keypoints(P: np.ndarray, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """COCO-18 keypoints (18, 2) and visibility (18,) bool; hidden face points dropped."""
    kp = np.array([P[J[n]] for n in KP])
    kp[1] = 0.5 * (P[J["sh_r"]] + P[J["sh_l"]])  # OpenPose neck = mid-shoulders
    vis = np.ones(18, bool)
    for i, (sd, s) in enumerate(SIDES):
        vis[14 + i] = np.cos(phi + s * 0.5) > 0.0
        vis[16 + i] = np.cos(phi + s * np.pi / 2) > -0.25
    return kp, vis


def render_pose(height, width, P, phi) -> np.ndarray:
    """OpenPose-style label image (H, W, 3) uint8: coloured limbs + dots on black."""
    kp, vis = keypoints(P, phi)
    stick, dot = 0.022 * height, 0.026 * height
    # draw supersampled, but only inside the skeleton's bounding box (the rest is black)
    pad = dot + 2
    x0, y0 = np.maximum(np.floor(kp[vis].min(0) - pad), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(kp[vis].max(0) + pad), [width, height]).astype(int)
    out = np.zeros((height, width, 3), np.uint8)
    if x0 >= x1 or y0 >= y1:
        return out
    kp = (kp - [x0, y0]) * _SS
    stick, dot = stick * _SS, dot * _SS
    crop = Image.new("RGB", (int(x1 - x0) * _SS, int(y1 - y0) * _SS))
    draw = ImageDraw.Draw(crop, "RGBA")
    for i in range(18):
        if vis[i]:
            x, y = kp[i]
            draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=COLORS[i])
    for i, (a, b) in enumerate(LIMBS):
        if not (vis[a] and vis[b]):
            continue
        m, v = (kp[a] + kp[b]) / 2, kp[b] - kp[a]
        ln = max(np.hypot(*v) / 2, 1e-3)
        ux = v / (2 * ln)
        pts = m + _ELL[:, :1] * ln * ux + _ELL[:, 1:] * stick * np.array([-ux[1], ux[0]])
        # alpha 153 = OpenPose's 0.6 blend of each limb over what is already drawn
        draw.polygon(pts.ravel().tolist(), fill=COLORS[i] + (153,))
    out[y0:y1, x0:x1] = np.asarray(crop.reduce(_SS))
    return out


# ------------------------------------------------------------------- writing
def _png_bytes(arr: np.ndarray) -> bytes:
    """PNG without timestamps; level 1 because encoding time dominates, not disk."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _render_chunk(job) -> int:
    """Worker: render one chunk of a sequence and write its PNGs; returns frames done."""
    height, width, seq, img_paths, lbl_paths = job
    for i, (ip, lp) in enumerate(zip(img_paths, lbl_paths)):
        P, phi = seq["joints"][i], float(seq["phi"][i])
        if ip:
            data = _png_bytes(render_frame(height, width, P, seq["tail"][i], phi,
                                           float(seq["flicker"][i]), seq["scale"]))
            for p in ip:
                pathlib.Path(p).write_bytes(data)
        pathlib.Path(lp).write_bytes(_png_bytes(render_pose(height, width, P, phi)))
    return len(img_paths)


def _jobs(tmp: pathlib.Path, cfg: dict, seed, height, width, chunk):
    """Yield (height, width, sliced sequence, image paths, label paths) chunks.

    A test frame 0 has two image paths: test_gt and the visible test_img copy."""
    plan = [("train", 0, cfg["n_train"]), ("val", 0, cfg["n_val"])]
    plan += [("test", k, cfg["test_len"]) for k in range(cfg["n_test"])]
    for split, k, n in plan:
        seq = sequence(seed, split, k, n, height, width)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            part = {key: (v[lo:hi] if isinstance(v, np.ndarray) else v) for key, v in seq.items()}
            if split == "test":
                imgs = [[str(tmp / f"test_gt/{k}/frame{i}.png")]
                        + ([str(tmp / f"test/test_img/{k}/frame0.png")] if i == 0 else [])
                        for i in range(lo, hi)]
                lbls = [str(tmp / f"test/test_label/{k}/frame{i}.png") for i in range(lo, hi)]
            else:
                imgs = [[str(tmp / f"{split}/{split}_img/frame{i}.png")] for i in range(lo, hi)]
                lbls = [str(tmp / f"{split}/{split}_label/frame{i}.png") for i in range(lo, hi)]
            yield height, width, part, imgs, lbls


def _check_args(preset, seed, height, width):
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


def _matches(root: pathlib.Path, want: dict) -> bool:
    """Does root hold a finished dataset with these settings? (the manifest is written last)"""
    try:
        have = json.loads((root / "synthdance.json").read_text())
    except (OSError, ValueError):
        return False
    return all(have.get(k) == v for k, v in want.items())


def generate(root, preset="small", seed=0, height=64, width=128, workers=None,
             progress=True) -> pathlib.Path:
    """Write a SynthDance dataset to root (atomically); skip if already there."""
    _check_args(preset, seed, height, width)
    seed, height, width = int(seed), int(height), int(width)
    root = pathlib.Path(root)
    cfg = PRESETS[preset]
    want = dict(generator="SynthDance", version=VERSION, preset=preset, seed=seed,
                height=height, width=width)
    if root.exists():
        if _matches(root, want):
            return root
        if not root.is_dir() or any(root.iterdir()):
            raise FileExistsError(f"{root} exists and is not a SynthDance {preset} "
                                  f"seed={seed} {height}x{width} dataset; refusing to touch it")
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
        chunk = int(np.clip(total // (workers * 16), 16, 256))
        jobs = _jobs(tmp, cfg, seed, height, width, chunk)
        with tqdm(total=total, desc=f"SynthDance[{preset}]", unit="frame",
                  disable=not progress) as bar:
            if workers == 1:
                for job in jobs:
                    bar.update(_render_chunk(job))
            else:
                with mp.get_context().Pool(workers) as pool:
                    for done in pool.imap_unordered(_render_chunk, jobs):
                        bar.update(done)
        (tmp / "synthdance.json").write_text(json.dumps({**want, **cfg}, indent=2) + "\n")
        try:
            os.rename(tmp, root)  # atomic; also replaces an empty directory
        except OSError:
            if _matches(root, want):  # a concurrent run finished first
                shutil.rmtree(tmp)
                return root
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
