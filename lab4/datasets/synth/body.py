"""The dancer's body: pose channels -> 2D joint positions, and the ponytail.

A "2.5D" stick figure: joints live in the image plane, and turning (phi)
squashes everything lateral by cos(phi) and slides the face round the head.
Lengths are in body units (standing height ~ BODY_HEIGHT), y points down,
the floor is at y = 0 and x = 0 is the middle of the stage.
"""

from __future__ import annotations

import numpy as np

from .moves import CHANNEL_INDEX, FPS

# tail = where the ponytail leaves the back of the head
JOINTS = [
    "pelvis",
    "neck",
    "head",
    "sh_r",
    "el_r",
    "wr_r",
    "sh_l",
    "el_l",
    "wr_l",
    "hip_r",
    "kn_r",
    "an_r",
    "hip_l",
    "kn_l",
    "an_l",
    "toe_r",
    "toe_l",
    "nose",
    "eye_r",
    "eye_l",
    "ear_r",
    "ear_l",
    "hand_r",
    "hand_l",
    "tail",
]
JOINT_INDEX = {name: i for i, name in enumerate(JOINTS)}

# Body proportions, body units.
TORSO = 0.30  # pelvis to neck
SHOULDER_HALF = 0.105  # neck to each shoulder
HIP_HALF = 0.068  # pelvis to each hip
UPPER_ARM, FOREARM = 0.16, 0.15
THIGH, SHIN = 0.24, 0.23
HEAD_RADIUS = 0.068
NECK_TO_HEAD = 0.105  # neck to the head's centre
SOLE = 0.03  # ankle above the floor
BODY_HEIGHT = 0.975
SIDES = (("r", -1.0), ("l", 1.0))  # the dancer's right is image-left when facing us


def skeleton(pose: np.ndarray, stage_half: float) -> np.ndarray:
    """(n, len(CHANNELS)) pose -> (n, len(JOINTS), 2) joints in body units, floor at y=0, y down.

    stage_half: how far (body units) x = +-1 is from the middle of the stage."""
    n = len(pose)
    ch = {name: pose[:, i] for name, i in CHANNEL_INDEX.items()}  # each (n,)
    phi = np.clip(ch["phi"], -1.2, 1.2)
    squash, sin_phi = np.cos(phi), np.sin(phi)  # 2.5D turn: lateral offsets shrink by cos(phi)
    tilt = ch["tilt"]
    up = np.stack([np.sin(tilt), -np.cos(tilt)], -1)  # (n, 2) torso axis, pelvis to neck
    across = np.stack([np.cos(tilt), np.sin(tilt)], -1)  # (n, 2) torso lateral axis
    at = {"pelvis": np.zeros((n, 2))}  # joint name -> (n, 2); the pelvis is the origin
    at["neck"] = TORSO * up
    head_tilt = ch["tilt"] + ch["head"]
    head_up = np.stack([np.sin(head_tilt), -np.cos(head_tilt)], -1)  # (n, 2)
    at["head"] = at["neck"] + NECK_TO_HEAD * head_up

    def offset(lateral, down, base, along_torso=True):
        """base + a limb: lateral (squashed by the turn) and down, in the torso's or the world's axes."""
        if along_torso:
            return base + (lateral * squash)[:, None] * across - down[:, None] * up
        return base + np.stack([lateral * squash, down], -1)

    for sd, s in SIDES:
        # arms hang from the shoulders and lean with the torso ...
        sh = at["neck"] + 0.015 * -up + (s * SHOULDER_HALF * squash)[:, None] * across
        at["sh_" + sd] = sh
        a1, a2 = ch["abd_" + sd], ch["abd_" + sd] + ch["el_" + sd]  # upper arm, forearm angles
        at["el_" + sd] = el = offset(s * UPPER_ARM * np.sin(a1), UPPER_ARM * np.cos(a1), sh)
        at["wr_" + sd] = wr = offset(s * FOREARM * np.sin(a2), FOREARM * np.cos(a2), el)
        at["hand_" + sd] = offset(s * 0.03 * np.sin(a2), 0.03 * np.cos(a2), wr)
        # ... legs hang straight down from the hips whatever the lean
        hip = np.stack([s * HIP_HALF * squash * np.cos(tilt / 2), s * HIP_HALF * np.sin(tilt / 2)], -1)
        at["hip_" + sd] = hip
        h1, h2 = ch["hip_" + sd], ch["hip_" + sd] - ch["kn_" + sd]  # thigh, shin angles
        at["kn_" + sd] = kn = offset(s * THIGH * np.sin(h1), THIGH * np.cos(h1), hip, False)
        at["an_" + sd] = an = offset(s * SHIN * np.sin(h2), SHIN * np.cos(h2), kn, False)
        at["toe_" + sd] = an + np.stack([s * 0.03 * squash + 0.055 * sin_phi, np.full(n, 0.02)], -1)
    # face points on the head sphere: azimuth phi is the nose, ears at +-90 deg
    # (n, 2, 2) the head's tilt
    rot = np.stack([np.cos(head_tilt), -np.sin(head_tilt), np.sin(head_tilt), np.cos(head_tilt)], -1).reshape(
        n, 2, 2
    )

    def on_head(azimuth, dy, radius=HEAD_RADIUS):
        v = np.stack([radius * np.sin(azimuth), np.full(n, dy)], -1)  # (n, 2) before the tilt
        return at["head"] + np.einsum("nij,nj->ni", rot, v)

    at["nose"] = on_head(phi, 0.2 * HEAD_RADIUS, 0.9 * HEAD_RADIUS)
    for sd, s in SIDES:
        at["eye_" + sd] = on_head(phi + s * 0.5, -0.1 * HEAD_RADIUS, 0.95 * HEAD_RADIUS)
        at["ear_" + sd] = on_head(phi + s * np.pi / 2, 0.0)
    at["tail"] = on_head(phi + np.pi, -0.55 * HEAD_RADIUS, 0.8 * HEAD_RADIUS)
    joints = np.stack([at[name] for name in JOINTS], 1)  # (n, len(JOINTS), 2)
    # plant the lowest foot on the floor, then lift for jumps, then place on stage
    low = np.maximum(joints[:, JOINT_INDEX["an_r"], 1], joints[:, JOINT_INDEX["an_l"], 1]) + SOLE
    joints[..., 1] -= (low + ch["lift"])[:, None]
    joints[..., 0] += (ch["x"] * stage_half)[:, None]
    return joints


def ponytail(anchor: np.ndarray, phi: np.ndarray, length=0.14) -> np.ndarray:
    """Ponytail tip offset from its anchor (n, 2), body units, for anchor path (n, 2).

    A damped spring (1.4 Hz, damping ratio 0.15) pulled towards hanging down
    behind the head and shaken by the head's acceleration: motion the pose
    does not determine, so the model's latent has something to explain."""
    n = len(anchor)
    acc = np.zeros_like(anchor)  # (n, 2) anchor acceleration, units/s^2
    if n > 2:
        acc[1:-1] = (anchor[2:] - 2 * anchor[1:-1] + anchor[:-2]) * FPS * FPS
    stiffness, damping, substeps = (2 * np.pi * 1.4) ** 2, 2 * 0.15 * 2 * np.pi * 1.4, 4
    dt = 1.0 / FPS / substeps
    rest = np.stack([-0.5 * np.sin(phi) * length, np.full(n, 0.9 * length)], -1)  # (n, 2)
    ox, oy, vx, vy = float(rest[0, 0]), float(rest[0, 1]), 0.0, 0.0  # tip offset and velocity
    out = np.zeros((n, 2))
    for i in range(n):
        rx, ry, ax, ay = rest[i, 0], rest[i, 1], acc[i, 0], acc[i, 1]
        for _ in range(substeps):  # semi-implicit Euler, in the anchor's accelerating frame
            vx += (-stiffness * (ox - rx) - damping * vx - ax) * dt
            vy += (-stiffness * (oy - ry) - damping * vy - ay) * dt
            ox, oy = ox + vx * dt, oy + vy * dt
        r = (ox * ox + oy * oy) ** 0.5  # keep the hair roughly inextensible
        f = min(max(r, 0.8 * length), 1.05 * length) / max(r, 1e-9)
        ox, oy = ox * f, oy * f
        out[i] = ox, oy
    return out
