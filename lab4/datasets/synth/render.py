"""Rendering the RGB frame: a studio background and the dancer, painted back to front.

Every body part is a tapered capsule (or, for the shirt, a convex polygon)
with anti-aliased edges and Lambert shading from one key light. Pure numpy
in float32; the dtypes and the order of the arithmetic fix the bytes.
"""

from __future__ import annotations

import numpy as np

from .body import HEAD_RADIUS, JOINT_INDEX, SIDES, SOLE

SKIN, HAIR = np.array([226, 178, 146], np.float32), np.array([58, 36, 26], np.float32)
SHIRT, PANTS, SHOES = (np.array(c, np.float32) for c in ([200, 52, 70], [42, 48, 78], [28, 26, 30]))
LIGHT = np.array([-0.45, -0.55, 0.70]) / np.linalg.norm([-0.45, -0.55, 0.70])  # key light, upper left
# the same direction as Python floats, so that float32 pixel maths stays float32
LIGHT_X, LIGHT_Y, LIGHT_Z = (float(v) for v in LIGHT)
FAR_SIDE_DIM = 0.8  # brightness of the arm and leg turned away from the camera
WALL = (236.0, 232.0, 224.0)  # the wall's colour (the control preset switches it: lab4.datasets.synth.look)
_BACKGROUNDS: dict = {}  # (height, width, wall) -> (H, W, 3) float32
PIXEL_CENTRES = np.arange(1 << 15, dtype=np.float32) + 0.5  # (32768,) x or y of pixel centres


def background(height: int, width: int, wall=WALL) -> np.ndarray:
    """Light wall of colour ``wall`` with a vertical gradient, baseboard, wooden floor -> (H, W, 3)
    float32."""
    key = (height, width, tuple(float(c) for c in wall))
    if key not in _BACKGROUNDS:
        y = (np.arange(height)[:, None, None] + 0.5) / height  # (H, 1, 1)
        x = (np.arange(width)[None, :, None] + 0.5) / width  # (1, W, 1)
        hz = 0.6  # horizon: where the wall meets the floor
        wall = np.array(key[2]) * (1.0 - 0.1 * y / hz)
        fy = np.clip((y - hz) / (1 - hz), 1e-3, 1)  # 0 at the horizon, 1 at the bottom
        floor = np.array([168, 130, 98.0]) * (0.9 + 0.15 * fy)
        board = ((x - 0.5) / fy * 0.5 + 0.5) * 14 % 1  # boards converge to a far point
        floor = floor * (1 - 0.05 * (np.abs(board - 0.5) < 0.06))
        bg = np.where(y < hz, wall, floor)
        bg = np.where((y >= hz - 0.035) & (y < hz), np.array([150, 140, 130.0]), bg)  # baseboard
        _BACKGROUNDS[key] = np.ascontiguousarray(bg, np.float32)  # (H, W, 3)
    return _BACKGROUNDS[key]


def draw_capsule(img, a, b, ra, rb, color):
    """Composite a tapered, Lambert-shaded, anti-aliased capsule a->b (radii ra, rb) into img in place."""
    ax, ay, bx, by = float(a[0]), float(a[1]), float(b[0]), float(b[1])
    rmax = max(ra, rb) + 1.0
    H, W = img.shape[:2]
    x0, x1 = max(0, int(min(ax, bx) - rmax)), min(W, int(max(ax, bx) + rmax + 1))
    y0, y1 = max(0, int(min(ay, by) - rmax)), min(H, int(max(ay, by) + rmax + 1))
    if x0 >= x1 or y0 >= y1:
        return
    px = PIXEL_CENTRES[None, x0:x1] - ax  # (1, w) pixel centres relative to a
    py = PIXEL_CENTRES[y0:y1, None] - ay  # (h, 1)
    dx, dy = bx - ax, by - ay
    inv = 1.0 / max(dx * dx + dy * dy, 1e-6)
    tt = np.minimum(np.maximum(px * (dx * inv) + py * (dy * inv), 0), 1)  # (h, w) nearest point on a->b
    nx, ny = px - tt * dx, py - tt * dy  # offset from the axis
    r = ra + (rb - ra) * tt if ra != rb else ra
    d2 = nx * nx + ny * ny
    cov = np.minimum(np.maximum(r + 0.5 - np.sqrt(d2), 0), 1)  # (h, w) coverage
    rr = 1 / r
    nz = np.sqrt(np.maximum(1 - d2 * (rr * rr), 0))  # unit normal (nx, ny, nz) / r
    lam = np.maximum((nx * LIGHT_X + ny * LIGHT_Y) * rr + nz * LIGHT_Z, 0)  # Lambert term
    shade = (0.5 + 0.6 * lam) * cov
    patch = img[y0:y1, x0:x1]
    patch *= (1 - cov)[..., None]
    patch += shade[..., None] * color


def draw_torso(img, sh_r, sh_l, hip_r, hip_l, color):
    """Convex shirt polygon with anti-aliased edges and cylindrical shading, into img in place."""
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
    d = np.full((y1 - y0, x1 - x0), -1e9, np.float32)  # (h, w) signed distance outside the polygon
    for i in range(len(poly)):
        e = poly[(i + 1) % len(poly)] - poly[i]
        nrm = np.array([e[1], -e[0]]) * (1 if area > 0 else -1) / max(np.hypot(*e), 1e-6)
        d = np.maximum(d, (px - poly[i, 0]) * nrm[0] + (py - poly[i, 1]) * nrm[1])
    cov = np.clip(0.5 - d, 0, 1)[..., None]
    axis_a, axis_b = 0.5 * (sh_r + sh_l), 0.5 * (hip_r + hip_l)
    ax = axis_b - axis_a
    half = max(0.5 * np.hypot(*(sh_l - sh_r)), 1.0)
    u = ((px - axis_a[0]) * ax[1] - (py - axis_a[1]) * ax[0]) / max(np.hypot(*ax), 1e-6) / half
    u = np.clip(-u, -1, 1)  # (h, w) -1 .. 1 across the body: the shirt is a cylinder
    shade = 0.5 + 0.6 * np.clip(u * LIGHT[0] + np.sqrt(1 - u * u) * LIGHT[2] + 0.2, 0, 1)
    patch = img[y0:y1, x0:x1]
    patch += cov * (shade[..., None] * color - patch)


def render_frame(height, width, joints, tail, phi, flicker, scale, wall=WALL) -> np.ndarray:
    """One RGB frame (H, W, 3) uint8 from pixel joints (len(JOINTS), 2).

    tail: ponytail tip offset (2,) pixels; phi: facing; flicker: light level
    (about 1); scale: pixels per body unit; wall: the wall's colour."""
    img = background(height, width, wall).copy()
    unit = scale
    # soft floor shadow that follows the feet and fades while jumping
    feet = joints[[JOINT_INDEX["an_r"], JOINT_INDEX["an_l"]]]
    cx, floor_y = feet[:, 0].mean(), 0.92 * height
    lift = max(0.0, floor_y - unit * SOLE - feet[:, 1].max())
    half_w = abs(feet[0, 0] - feet[1, 0]) / 2 + 0.16 * unit
    xs = (np.arange(width) + 0.5 - cx) / half_w
    ys = (np.arange(height) + 0.5 - floor_y - 0.005 * unit) / (0.045 * unit)
    shadow = np.exp(-2 * (xs[None, :] ** 2 + ys[:, None] ** 2)) * 0.35 / (1 + 10 * lift / unit)
    img *= (1 - shadow)[..., None]
    at = lambda name: joints[JOINT_INDEX[name]]  # noqa: E731
    # ponytail: quadratic Bezier from the back of the head, three tapered pieces
    a = at("tail")
    tip = a + tail
    ctrl = a + np.array([0.35 * tail[0], 0.6 * np.hypot(*tail)])
    pts = [(1 - s) ** 2 * a + 2 * s * (1 - s) * ctrl + s * s * tip for s in (0, 0.33, 0.66, 1)]
    for i in range(3):
        draw_capsule(img, pts[i], pts[i + 1], (0.032 - 0.006 * i) * unit, (0.026 - 0.006 * i) * unit, HAIR)
    far = 1 if phi > 0.2 else (-1 if phi < -0.2 else 0)  # side turned away from us (0: none)

    def leg(sd, k=1.0):
        draw_capsule(img, at("hip_" + sd), at("kn_" + sd), 0.05 * unit, 0.041 * unit, PANTS * k)
        draw_capsule(img, at("kn_" + sd), at("an_" + sd), 0.041 * unit, 0.032 * unit, PANTS * k)
        draw_capsule(img, at("an_" + sd), at("toe_" + sd), 0.026 * unit, 0.024 * unit, SHOES * k)

    def arm(sd, k=1.0):
        draw_capsule(img, at("sh_" + sd), at("el_" + sd), 0.036 * unit, 0.028 * unit, SHIRT * k)
        draw_capsule(img, at("el_" + sd), at("wr_" + sd), 0.025 * unit, 0.019 * unit, SKIN * k)
        draw_capsule(img, at("wr_" + sd), at("hand_" + sd), 0.024 * unit, 0.024 * unit, SKIN * k)

    # back to front: far arm, legs, hips, neck, shirt, head and hair, near arms
    for sd, s in SIDES:
        if s == far:
            arm(sd, FAR_SIDE_DIM)
    for sd, s in SIDES:
        leg(sd, FAR_SIDE_DIM if s == far else 1.0)
    draw_capsule(img, at("hip_r"), at("hip_l"), 0.06 * unit, 0.06 * unit, PANTS)
    draw_capsule(img, at("neck"), at("head"), 0.03 * unit, 0.03 * unit, SKIN)
    c = abs(np.cos(phi))
    shr, shl = at("sh_r"), at("sh_l")
    out = (shl - shr) / max(np.hypot(*(shl - shr)), 1e-6) * 0.035 * unit  # shirt sleeves stick out
    draw_torso(img, shr - out, shl + out, at("hip_r") - out * 0.9, at("hip_l") + out * 0.9, SHIRT)
    draw_capsule(img, shr, shl, 0.04 * unit, 0.04 * unit, SHIRT)
    hc = at("head")
    back = (hc - at("nose")) / max(np.hypot(*(hc - at("nose"))), 1e-6)  # (2,) away from the face
    up = (hc - at("neck")) / max(np.hypot(*(hc - at("neck"))), 1e-6)  # (2,) up the head
    hair_c = hc + (0.18 * up + 0.22 * back) * HEAD_RADIUS * unit
    draw_capsule(img, hair_c, hair_c, 1.02 * HEAD_RADIUS * unit, 1.02 * HEAD_RADIUS * unit, HAIR)
    face = hc - 0.12 * up * HEAD_RADIUS * unit - 0.1 * back * HEAD_RADIUS * unit
    draw_capsule(img, face, face, 0.93 * HEAD_RADIUS * unit, 0.93 * HEAD_RADIUS * unit, SKIN)
    fringe = hc + 0.6 * up * HEAD_RADIUS * unit
    draw_capsule(
        img,
        fringe - 0.45 * c * HEAD_RADIUS * unit * np.array([up[1], -up[0]]),
        fringe + 0.45 * c * HEAD_RADIUS * unit * np.array([up[1], -up[0]]),
        0.3 * HEAD_RADIUS * unit,
        0.3 * HEAD_RADIUS * unit,
        HAIR,
    )
    for sd, s in SIDES:  # eyes only where they face the camera
        if np.cos(phi + s * 0.5) > 0.2:
            e = at("eye_" + sd)
            draw_capsule(img, e, e, 0.012 * unit, 0.012 * unit, HAIR * 0.6)
    for sd, s in SIDES:
        if s != far:
            arm(sd)
    img *= flicker
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
