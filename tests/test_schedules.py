"""KL-annealing and teacher-forcing schedules against their closed forms."""

import math

import pytest

from lab4.schedules import TeacherForcing, kl_beta, teacher_forcing_ratio


def closed_form(progress, total, cycles, ratio):
    """Fu et al. 2019, written independently: exact rational position inside the cycle."""
    if progress >= total:
        return 1.0
    period = total / cycles
    k = math.floor(progress / period + 1e-9)
    pos = (progress - k * period) / period
    return min(1.0, max(0.0, pos) / ratio)


@pytest.mark.parametrize(
    "total,cycles,ratio", [(70, 10, 1.0), (10, 4, 0.5), (7, 10, 1.0), (3, 10, 0.25), (5, 2, 0.8)]
)
def test_cyclical_matches_closed_form(total, cycles, ratio):
    steps = 97
    for i in range(steps + 1):
        p = total * i / steps
        assert kl_beta("cyclical", p, total, cycles, ratio) == pytest.approx(
            closed_form(p, total, cycles, ratio), abs=1e-9
        )


@pytest.mark.parametrize("total,cycles", [(70, 10), (7, 10), (3, 10), (10, 3), (2, 2)])
def test_cyclical_starts_at_zero_and_restarts_at_every_boundary(total, cycles):
    assert kl_beta("cyclical", 0.0, total, cycles, 1.0) == 0.0
    for k in range(1, cycles):
        boundary = k * total / cycles
        assert kl_beta("cyclical", boundary, total, cycles, 1.0) == pytest.approx(0.0, abs=1e-9), (
            k,
            boundary,
        )
        # just before the boundary the ramp (ratio 1) is almost at the top
        assert kl_beta("cyclical", boundary - 1e-6, total, cycles, 1.0) > 0.99


def test_cyclical_reaches_exactly_one_and_holds_after_ratio():
    total, cycles, ratio = 10, 5, 0.5  # period 2, ramp over the first epoch of each cycle
    for c in range(cycles):
        start = 2 * c
        assert kl_beta("cyclical", start, total, cycles, ratio) == pytest.approx(0.0, abs=1e-12)
        assert kl_beta("cyclical", start + 0.25, total, cycles, ratio) == pytest.approx(0.25)
        assert kl_beta("cyclical", start + 0.5, total, cycles, ratio) == pytest.approx(0.5)
        assert kl_beta("cyclical", start + 1.0, total, cycles, ratio) == 1.0  # exactly
        assert kl_beta("cyclical", start + 1.5, total, cycles, ratio) == 1.0
        assert kl_beta("cyclical", start + 1.999, total, cycles, ratio) == 1.0
    assert kl_beta("cyclical", total, total, cycles, ratio) == 1.0


def test_cyclical_linear_within_ramp():
    total, cycles, ratio = 20, 2, 1.0
    xs = [0.5 * i for i in range(20)]  # the first cycle [0, 10)
    ys = [kl_beta("cyclical", x, total, cycles, ratio) for x in xs]
    for x, y in zip(xs, ys):
        assert y == pytest.approx(x / 10)
    diffs = [b - a for a, b in zip(ys, ys[1:])]
    assert all(d == pytest.approx(diffs[0]) for d in diffs)


def test_monotonic_one_ramp_then_one():
    total = 10
    for ratio in (1.0, 0.5, 0.1):
        for i in range(101):
            p = total * i / 100
            want = min(1.0, p / (ratio * total))
            assert kl_beta("monotonic", p, total, 10, ratio) == pytest.approx(want, abs=1e-9)
    assert kl_beta("monotonic", 0, total, 10, 0.5) == 0.0
    assert kl_beta("monotonic", 5, total, 10, 0.5) == 1.0
    assert kl_beta("monotonic", 9.9, total, 10, 0.5) == 1.0  # no restart


def test_monotonic_held_ramps_over_its_epochs_then_holds_one():
    """The other monotonic of student reports: a ramp over kl_anneal_cycle * ratio epochs, then 1, whatever
    the run's length (the lab's "monotonic" here is one ramp over the whole run)."""
    for p, want in ((0, 0.0), (1, 0.1), (5, 0.5), (10, 1.0), (37.5, 1.0), (70, 1.0)):
        assert kl_beta("monotonic-held", p, 70, 10, 1.0) == pytest.approx(want)
    assert kl_beta("monotonic-held", 2.5, 70, 10, 0.5) == pytest.approx(0.5)
    assert kl_beta("monotonic", 5, 70, 10, 1.0) == pytest.approx(5 / 70)  # the single ramp is much slower


def test_none_is_always_one():
    for p in (0, 0.1, 3.3, 69.9, 70):
        assert kl_beta("none", p, 70, 10, 1.0) == 1.0
    # case-insensitive, like the lab
    assert kl_beta("None", 0, 70) == 1.0 and kl_beta("Cyclical", 0, 70) == 0.0


@pytest.mark.parametrize(
    "kind,ratio,cycle",
    [
        ("linear", 1.0, 10),
        ("", 1.0, 10),
        ("cyclical", 0.0, 10),
        ("cyclical", 1.5, 10),
        ("monotonic", -0.2, 10),
        ("cyclical", 1.0, 0),
    ],
)
def test_bad_kind_or_ratio_raise(kind, ratio, cycle):
    with pytest.raises(ValueError):
        kl_beta(kind, 0.5, 10, cycle, ratio)


def test_teacher_forcing_ratio_schedule():
    assert [teacher_forcing_ratio(e, 1.0, 10, 0.1) for e in range(10)] == [1.0] * 10
    assert teacher_forcing_ratio(10, 1.0, 10, 0.1) == pytest.approx(0.9)
    assert teacher_forcing_ratio(11, 1.0, 10, 0.1) == pytest.approx(0.8)
    assert teacher_forcing_ratio(15, 1.0, 10, 0.1) == pytest.approx(0.4)
    assert teacher_forcing_ratio(19, 1.0, 10, 0.1) == pytest.approx(0.0, abs=1e-12)
    for e in range(19, 80):
        assert teacher_forcing_ratio(e, 1.0, 10, 0.1) == pytest.approx(0.0, abs=1e-12)
        assert teacher_forcing_ratio(e, 1.0, 10, 0.1) >= 0.0
    assert teacher_forcing_ratio(3, 0.5, 2, 0.25) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        teacher_forcing_ratio(0, 1.5)


def test_per_batch_draws_match_ratio():
    tf = TeacherForcing(1.0, 2, 0.3, per_epoch=False, seed=1)
    assert all(tf.draw(0) for _ in range(500))  # ratio 1
    n = 4000
    for epoch, ratio in ((2, 0.7), (3, 0.4)):
        assert tf.ratio(epoch) == pytest.approx(ratio)
        frac = sum(tf.draw(epoch) for _ in range(n)) / n
        assert abs(frac - ratio) < 4 * math.sqrt(ratio * (1 - ratio) / n)
    assert not any(tf.draw(9) for _ in range(500))  # ratio 0
    # per-batch draws do vary within an epoch
    draws = {tf.draw(2) for _ in range(100)}
    assert draws == {True, False}


def test_per_epoch_draws_constant_within_epoch():
    tf = TeacherForcing(0.5, 100, 0.1, per_epoch=True, seed=4)  # ratio 0.5 in every epoch
    outcomes = []
    for epoch in range(60):
        vals = {tf.draw(epoch) for _ in range(10)}
        assert len(vals) == 1  # one coin per epoch
        outcomes.append(vals.pop())
    assert 10 < sum(outcomes) < 50  # but the coin differs between epochs


@pytest.mark.parametrize("per_epoch", [False, True])
def test_state_dict_round_trip_reproduces_draws(per_epoch):
    a = TeacherForcing(0.6, 0, 0.0, per_epoch=per_epoch, seed=7)
    for e in range(5):
        for _ in range(7):
            a.draw(e)
    state = a.state_dict()
    expected = [a.draw(e) for e in range(5, 40) for _ in range(3)]
    b = TeacherForcing(0.6, 0, 0.0, per_epoch=per_epoch, seed=999)
    b.load_state_dict(state)
    assert [b.draw(e) for e in range(5, 40) for _ in range(3)] == expected
    assert len(set(expected)) == 2


def test_state_dict_survives_torch_save(tmp_path):
    import torch

    a = TeacherForcing(0.5, 0, 0.0, per_epoch=True, seed=11)
    a.draw(0)
    torch.save(a.state_dict(), tmp_path / "tf.pt")
    state = torch.load(tmp_path / "tf.pt", weights_only=True)
    b = TeacherForcing(0.5, 0, 0.0, per_epoch=True, seed=0)
    b.load_state_dict(state)
    assert [b.draw(e) for e in range(30)] == [a.draw(e) for e in range(30)]


def test_ramp_epochs_is_where_beta_first_reaches_one():
    """The epochs a sentence quotes for a ramp agree with kl_beta itself."""
    from lab4.schedules import kl_beta, ramp_epochs

    for kind, total, cycles, ratio in (
        ("monotonic", 3, 1, 0.5),
        ("cyclical", 6, 4, 0.5),
        ("monotonic-held", 6, 6, 0.5),
    ):
        end = ramp_epochs(kind, total, cycles, ratio)
        assert kl_beta(kind, end, total, cycles, ratio) == pytest.approx(1.0)
        assert kl_beta(kind, 0.99 * end, total, cycles, ratio) < 1.0
    assert (ramp_epochs("monotonic", 3, 1, 0.5), ramp_epochs("none", 3)) == (1.5, 0.0)
    with pytest.raises(ValueError, match="kl_anneal_type"):
        ramp_epochs("linear", 3)
