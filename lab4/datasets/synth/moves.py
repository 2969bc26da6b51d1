"""Choreography: the table of dance MOVES, and chaining them into joint-angle curves over time.

A pose is a vector of CHANNELS: where the dancer stands and faces, and the
angle of each joint. A dance is a random chain of MOVES (the table below),
each danced for 1-4 s to one tempo per sequence, blended into the next by a
0.4 s cosine cross-fade, plus slow noise so no two repeats look the same.

Each move is data: a weight (how often it is picked), a function from the
beat to the curves of the channels it sets (the others stay at NEUTRAL),
and how it moves the dancer across the stage (most moves stay put).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

FPS = 30.0  # frames per second of every sequence

# Pose channels. Angles in radians; abd/hip = raise away from the body in the
# frontal plane (0 = hanging down), el/kn = bend of the distal segment.
# hip raise, knee bend
CHANNELS = [
    "x",  # stage position, -1 (image left) .. 1 (image right)
    "phi",  # facing: 0 = towards the camera, + = turned to the dancer's left
    "lift",  # jump height, body units
    "tilt",  # torso lean to the side
    "head",  # head tilt relative to the torso
    "abd_r",
    "el_r",
    "abd_l",
    "el_l",  # shoulder raise, elbow bend
    "hip_r",
    "kn_r",
    "hip_l",
    "kn_l",
]
CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}
# relaxed standing pose
NEUTRAL = dict(abd_r=0.15, el_r=0.25, abd_l=0.15, el_l=0.25, hip_r=0.08, kn_r=0.06, hip_l=0.08, kn_l=0.06)
NOISY_CHANNELS = range(CHANNEL_INDEX["tilt"], len(CHANNELS))  # every angle; not x, phi, lift


class Beat:
    """The music a move is danced to, at the move's local times t (s).

    w is the beat in rad/s; amp (about 0.7-1.2) scales the move; side (+1/-1)
    says which side leads, so a kick is with `lead` while `trail` stands."""

    def __init__(self, t: np.ndarray, w: float, amp: float, side: int):
        self.t, self.w, self.amp, self.side = t, w, amp, side
        self.lead, self.trail = ("r", "l") if side > 0 else ("l", "r")
        self.half = np.sin(w * t / 2)  # (n,) one swing every two beats
        self.full = np.sin(w * t)  # (n,) one swing a beat
        self.bounce = (1 - np.cos(w * t)) / 2  # (n,) 0 -> 1 -> 0 once a beat


# ---------------------------------------------------------------- the moves
# Each returns {channel or (channel, channel): value}; a value is a number
# or an (n,) curve. Keep the arithmetic as written: the dataset's bytes depend on it.
def sway(b: Beat) -> dict:
    """Lean from side to side every two beats, arms loose, knees bouncing on the beat."""
    return {
        "tilt": 0.12 * b.amp * b.half,
        "head": -0.1 * b.amp * b.half,  # the head stays upright
        "abd_r": 0.4 + 0.25 * b.amp * b.half,
        "abd_l": 0.4 - 0.25 * b.amp * b.half,
        ("el_r", "el_l"): 0.6,
        ("kn_r", "kn_l"): 0.06 + 0.18 * b.amp * b.bounce,
    }


def wave(b: Beat) -> dict:
    """Both arms up, waving in opposite phase, each elbow trailing its shoulder."""
    out = {}
    for sd, ph in (("r", 0.0), ("l", np.pi)):
        out["abd_" + sd] = 1.5 + 0.35 * b.amp * np.sin(b.w * b.t / 2 + ph)
        out["el_" + sd] = 0.8 * b.amp * np.sin(b.w * b.t / 2 + ph - 1.2)
    out["tilt"] = 0.06 * b.amp * b.half
    return out


def arms_up(b: Beat) -> dict:
    """Arms high overhead, rocking; a small knee bounce on the beat."""
    return {
        "abd_r": 2.6 + 0.18 * b.amp * b.half,
        "abd_l": 2.6 - 0.18 * b.amp * b.half,
        ("el_r", "el_l"): 0.3 + 0.25 * b.amp * b.bounce,
        "tilt": 0.1 * b.amp * b.half,
        ("kn_r", "kn_l"): 0.05 + 0.15 * b.bounce,
    }


def kick(b: Beat) -> dict:
    """Kick the lead leg out every two beats, leaning away; arms out for balance."""
    pulse = np.maximum(0, b.half) ** 2  # (n,) 0 .. 1, one kick every two beats
    return {
        "hip_" + b.lead: 0.08 + 1.05 * b.amp * pulse,
        "kn_" + b.lead: 0.1 + 0.5 * pulse * (1 - pulse),  # bent on the way up and down
        "kn_" + b.trail: 0.06 + 0.12 * pulse,
        "tilt": -b.side * 0.2 * b.amp * pulse,
        ("abd_r", "abd_l"): 1.15,
        ("el_r", "el_l"): 0.35,
    }


def squat(b: Beat) -> dict:
    """Sink down and up every two beats, arms rising as the knees bend."""
    depth = (1 - np.cos(b.w * b.t / 2)) / 2  # (n,) 0 standing .. 1 lowest
    return {
        ("hip_r", "hip_l"): 0.15 + 0.5 * b.amp * depth,
        ("kn_r", "kn_l"): 0.1 + 1.15 * b.amp * depth,
        ("abd_r", "abd_l"): 0.9 + 0.6 * depth,
        ("el_r", "el_l"): 0.3 + 1.0 * depth,
    }


def step(b: Beat) -> dict:
    """March on the beat, each arm swinging against its leg (the dancer travels, see step_aside)."""
    out = {}
    for sd, ph in (("r", 0.0), ("l", np.pi)):
        gait = np.sin(b.w * b.t + ph)  # (n,) this leg's swing
        out["hip_" + sd] = 0.12 + 0.18 * b.amp * (1 + gait) / 2
        out["kn_" + sd] = 0.08 + 0.35 * b.amp * np.maximum(0, gait) ** 2
        out["abd_" + sd] = 0.45 + 0.3 * b.amp * np.sin(b.w * b.t + ph + np.pi)
    out["tilt"] = 0.05 * b.full
    return out


def turn(b: Beat) -> dict:
    """Arms out while the dancer turns to a new facing (see turn_around)."""
    return {
        ("abd_r", "abd_l"): 1.25 + 0.2 * b.amp * b.half,
        ("el_r", "el_l"): 0.5,
        ("kn_r", "kn_l"): 0.06 + 0.15 * b.bounce,
    }


def point(b: Beat) -> dict:
    """Point up with the lead arm and down with the other, seesawing every two beats."""
    return {
        "abd_" + b.lead: 1.5 + 1.0 * b.amp * b.half,
        "abd_" + b.trail: 1.5 - 1.0 * b.amp * b.half,
        ("el_r", "el_l"): 0.15,  # straight arms
        "tilt": 0.1 * b.amp * b.half,
        "hip_r": 0.12 + 0.08 * b.half,
        "hip_l": 0.12 - 0.08 * b.half,
    }


def hop(b: Beat) -> dict:
    """Jump every two beats, arms flung up in the air, knees bent on landing."""
    air = np.maximum(0, b.half) ** 2  # (n,) 0 on the ground .. 1 at the top
    return {
        "lift": 0.06 * b.amp * air,
        ("kn_r", "kn_l"): 0.06 + 0.45 * np.maximum(0, -b.half) ** 2,
        ("abd_r", "abd_l"): 0.5 + 1.2 * air,
        ("hip_r", "hip_l"): 0.1 + 0.15 * air,
    }


def roll(b: Beat) -> dict:
    """Roll the body and head from side to side, elbows bent, arms following the roll."""
    return {
        "tilt": 0.2 * b.amp * b.half,
        "head": 0.15 * b.amp * np.sin(b.w * b.t / 2 + 1.0),
        "abd_r": 0.9 + 0.4 * b.amp * np.sin(b.w * b.t / 2 + 0.5),
        "abd_l": 0.9 - 0.4 * b.amp * np.sin(b.w * b.t / 2 + 0.5),
        ("el_r", "el_l"): 1.2,
        ("hip_r", "hip_l"): 0.12,
    }


# -------------------------------------------- where a move takes the dancer
# (rng, x, facing) at the move's start -> (x, facing) at its end.
def stay(rng: np.random.Generator, x: float, phi: float) -> tuple[float, float]:
    """Stay in place; the facing drifts back toward the camera."""
    return x, 0.7 * phi


def step_aside(rng: np.random.Generator, x: float, phi: float) -> tuple[float, float]:
    """Walk 0.4-0.9 stage half-widths, more likely towards the middle."""
    d = rng.uniform(0.4, 0.9) * (1 if x < rng.uniform(-0.6, 0.6) else -1)
    return float(np.clip(x + d, -1, 1)), 0.7 * phi


def turn_around(rng: np.random.Generator, x: float, phi: float) -> tuple[float, float]:
    """Turn 35-80 degrees either way, never further than side-on."""
    return x, float(np.clip(phi + rng.choice([-1, 1]) * rng.uniform(0.6, 1.4), -1.15, 1.15))


class Move(NamedTuple):
    weight: float  # relative chance of being picked next
    curves: Callable[[Beat], dict]  # the channels it sets, over time
    travel: Callable[..., tuple] = stay  # where the dancer is at its end


MOVES: dict[str, Move] = {  # any change here (even the order) changes every dataset: bump VERSION
    "sway": Move(1.0, sway),
    "wave": Move(1.2, wave),
    "arms_up": Move(0.8, arms_up),
    "kick": Move(1.0, kick),
    "squat": Move(1.0, squat),
    "step": Move(1.6, step, step_aside),
    "turn": Move(1.2, turn, turn_around),
    "point": Move(1.0, point),
    "hop": Move(0.7, hop),
    "roll": Move(0.9, roll),
}
MOVE_NAMES = list(MOVES)
MOVE_WEIGHTS = np.array([m.weight for m in MOVES.values()])  # (len(MOVES),)


def move_curves(move: Move, t: np.ndarray, w: float, amp: float, side: int) -> np.ndarray:
    """All channels of one move at local times t (s) -> (n, len(CHANNELS)); x and phi left 0."""
    out = np.zeros((len(t), len(CHANNELS)))  # (n, D)
    for name, v in NEUTRAL.items():
        out[:, CHANNEL_INDEX[name]] = v
    for names, v in move.curves(Beat(t, w, amp, side)).items():
        for name in (names,) if isinstance(names, str) else names:
            out[:, CHANNEL_INDEX[name]] = v
    return out


def choreography(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random move sequence, cosine cross-faded, plus slow noise -> (n, len(CHANNELS)) poses.

    The draws from rng come in a fixed order (tempo, start position, then per
    move: which, how long, how big, which side, its travel and phase; then
    the noise), so a sequence is a pure function of the generator's seed."""
    t = np.arange(n) / FPS  # (n,) frame times, s
    w = 2 * np.pi * rng.uniform(96, 132) / 60  # one tempo per sequence (96-132 bpm), rad/s
    fade = 0.4  # cross-fade length, s
    pose = np.zeros((n, len(CHANNELS)))
    start, x0, phi0, prev = 0.0, rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.4), -1
    while prev < 0 or start - fade / 2 <= t[-1]:  # until the weights cover every frame
        p = MOVE_WEIGHTS.copy()
        if prev >= 0:
            p[prev] = 0  # never the same move twice in a row
        m = int(rng.choice(len(MOVES), p=p / p.sum()))
        move = MOVES[MOVE_NAMES[m]]
        dur = rng.uniform(1.0, 4.0)
        amp, side = rng.uniform(0.7, 1.2), rng.choice([-1, 1])
        x1, phi1 = move.travel(rng, x0, phi0)
        # frames this move touches: its own span plus half a fade either side
        lo, hi = (start - fade / 2 if prev >= 0 else -1.0), start + dur + fade / 2
        idx = np.nonzero((t >= lo) & (t < hi))[0]
        if idx.size:
            tl = t[idx] - start  # (k,) time since the move began, s
            wt = np.ones_like(tl)  # (k,) blend weight
            if prev >= 0:  # ramp in; the previous move's ramp out is its mirror
                wt = 0.5 - 0.5 * np.cos(np.pi * np.clip((tl + fade / 2) / fade, 0, 1))
            wt *= 0.5 + 0.5 * np.cos(np.pi * np.clip((tl - dur + fade / 2) / fade, 0, 1))
            # start the move at a random point of its beat cycle
            vals = move_curves(move, tl + rng.uniform(0, 2 * np.pi / w), w, amp, side)
            ease = 0.5 - 0.5 * np.cos(np.pi * np.clip(tl / dur, 0, 1))  # (k,) 0 -> 1 over the move
            vals[:, CHANNEL_INDEX["x"]] = x0 + (x1 - x0) * ease
            vals[:, CHANNEL_INDEX["phi"]] = phi0 + (phi1 - phi0) * ease
            pose[idx] += wt[:, None] * vals
        start, x0, phi0, prev = start + dur, x1, phi1, m
    for c in NOISY_CHANNELS:  # slow noise so repeats never look identical
        for _ in range(3):
            f, ph = rng.uniform(0.1, 0.6), rng.uniform(0, 2 * np.pi)
            pose[:, c] += 0.04 * np.sin(2 * np.pi * f * t + ph)
    return pose
