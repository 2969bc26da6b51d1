"""Rendering the pose label image, as OpenPose draws it: coloured limbs and dots on black."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .body import JOINT_INDEX, SIDES

# OpenPose COCO-18 keypoints, in its order; "neck" is replaced by mid-shoulders.
COCO18 = [
    "nose",
    "neck",
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
    "eye_r",
    "eye_l",
    "ear_r",
    "ear_l",
]
NECK, EYE_R, EAR_R = 1, 14, 16  # indices into COCO18; EYE_L = EYE_R + 1, EAR_L = EAR_R + 1
# limbs as (keypoint, keypoint), and the palette of keypoints and limbs, as in OpenPose
LIMBS = [
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
]
COLORS = [
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
]
SUPERSAMPLE = 4  # draw at 4x and downsample: PIL's polygons are not anti-aliased
LIMB_ALPHA = 153  # OpenPose's 0.6 blend of each limb over what is already drawn
_ANGLES = np.linspace(0, 2 * np.pi, 24, endpoint=False)
UNIT_CIRCLE = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], -1)  # (24, 2) a limb is an ellipse


def keypoints(joints: np.ndarray, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """COCO-18 keypoints (18, 2) and visibility (18,) bool from joints (len(JOINTS), 2).

    Eyes and ears turned away from the camera are hidden, as OpenPose would miss them."""
    kp = np.array([joints[JOINT_INDEX[name]] for name in COCO18])
    kp[NECK] = 0.5 * (joints[JOINT_INDEX["sh_r"]] + joints[JOINT_INDEX["sh_l"]])
    vis = np.ones(18, bool)
    for i, (sd, s) in enumerate(SIDES):
        vis[EYE_R + i] = np.cos(phi + s * 0.5) > 0.0
        vis[EAR_R + i] = np.cos(phi + s * np.pi / 2) > -0.25
    return kp, vis


def render_pose(height, width, joints, phi) -> np.ndarray:
    """OpenPose-style label image (H, W, 3) uint8 from pixel joints (len(JOINTS), 2)."""
    kp, vis = keypoints(joints, phi)
    stick, dot = 0.022 * height, 0.026 * height  # limb half-width and dot radius, pixels
    # draw supersampled, but only inside the skeleton's bounding box (the rest is black)
    pad = dot + 2
    x0, y0 = np.maximum(np.floor(kp[vis].min(0) - pad), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(kp[vis].max(0) + pad), [width, height]).astype(int)
    out = np.zeros((height, width, 3), np.uint8)
    if x0 >= x1 or y0 >= y1:
        return out
    kp = (kp - [x0, y0]) * SUPERSAMPLE  # (18, 2) in the supersampled crop
    stick, dot = stick * SUPERSAMPLE, dot * SUPERSAMPLE
    crop = Image.new("RGB", (int(x1 - x0) * SUPERSAMPLE, int(y1 - y0) * SUPERSAMPLE))
    draw = ImageDraw.Draw(crop, "RGBA")
    for i in range(18):
        if vis[i]:
            x, y = kp[i]
            draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=COLORS[i])
    for i, (a, b) in enumerate(LIMBS):
        if not (vis[a] and vis[b]):
            continue
        m, v = (kp[a] + kp[b]) / 2, kp[b] - kp[a]  # centre and a->b
        ln = max(np.hypot(*v) / 2, 1e-3)  # half length
        ux = v / (2 * ln)  # (2,) unit vector along the limb
        pts = m + UNIT_CIRCLE[:, :1] * ln * ux + UNIT_CIRCLE[:, 1:] * stick * np.array([-ux[1], ux[0]])
        draw.polygon(pts.ravel().tolist(), fill=COLORS[i] + (LIMB_ALPHA,))
    out[y0:y1, x0:x1] = np.asarray(crop.reduce(SUPERSAMPLE))
    return out
