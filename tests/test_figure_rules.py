"""The figure rules a test can check (lab4.plots.panel_problems): no panel whose curves are all flat, and no
panel over epochs that mixes runs of different lengths; checked on the rule itself and on the report's
figures drawn from run folders where the rule would bite (every latent unit collapsed, quirks of 3 and 6
epochs)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)

# the extra grid's runs at two lengths (names as study-extra.yaml has them) beside the study's schedules
STUDY_SCORES = {
    **{f"{s}{f'-s{k}' if k else ''}": 25.0 + k for s in ("monotonic", "cyclical", "none") for k in range(3)},
    **{f"{s}{f'-s{k}' if k else ''}": 24.0 + k for s in ("lr-late", "quick-monotonic") for k in range(3)},
}


@pytest.fixture
def drawn(monkeypatch):
    """{file stem: (panels, problems)} of every figure saved while the test runs; nothing is written."""
    import matplotlib.pyplot as plt

    from lab4 import plots

    seen = {}

    def record(fig, stem, formats=("pdf", "png")):
        seen[str(stem).rsplit("/", 1)[-1]] = (len(fig.axes), plots.panel_problems(fig))
        plt.close(fig)
        return []

    monkeypatch.setattr(plots, "save", record)
    return seen


def test_the_rule_finds_a_flat_panel_and_mixed_lengths():
    import matplotlib.pyplot as plt

    from lab4.plots import panel_problems

    fig, (a, b, c) = plt.subplots(1, 3)
    a.plot([1, 2, 3], [0, 0, 0], label="none")  # every curve flat
    a.axhline(1.0)  # a reference line is not a curve
    b.plot([1, 2, 3], [1, 2, 3])
    b.plot([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6])  # 3 and 6 epochs in one panel
    b.set(xlabel="epoch", title="val")
    c.plot([1, 2, 3], [0, 0, 0])
    c.plot([1, 2, 3], [0, 1, 0])  # one flat curve beside one that moves is fine
    assert panel_problems(fig) == ["panel 1: every curve is flat", "val: curves end at different epochs"]
    plt.close(fig)


def test_the_control_figure_leaves_out_units_that_are_all_zero(tmp_path, drawn):
    from conftest import write_control_runs

    from lab4.report.mechanism import control

    zero = {s: [0, 0, 0] for s in ("none", "monotonic", "cyclical")}
    runs = write_control_runs(tmp_path / "zero", zero)
    control.control_figure(runs, tmp_path)
    assert drawn["control"] == (2, []), drawn
    assert control.control_macros(runs)["CtlUnitsPanelCase"] == "omitted"
    used = write_control_runs(tmp_path / "used", {**zero, "monotonic": [100, 120, 110]})
    control.control_figure(used, tmp_path)
    assert drawn["control"] == (3, []), drawn
    assert control.control_macros(used)["CtlUnitsPanelCase"] == "drawn"


def test_the_study_figures_keep_the_rules(tmp_path, drawn):
    from conftest import study_grids, write_study_folder

    from lab4.report.study import figures, numbers
    from lab4.report.study.roles import roles

    folder = write_study_folder(tmp_path, STUDY_SCORES, real=None)
    runs, _ = numbers.load_study(folder)
    extra, _ = numbers.load_study(folder.parent / "study-extra")
    study_roles = roles(study_grids())
    figures.make_figures(runs, tmp_path, study_roles)
    figures.extra_figures(extra, tmp_path, study_roles)
    assert drawn["study_collapse"][0] == 1  # no unit ever active: the KL panel alone
    lengths = {int(r.config()["num_epoch"]) for r in extra}
    assert len(lengths) == 2 and drawn["quirks_val_psnr"][0] == 2  # one panel per run length
    # write_study_folder's PSNR per frame is one number per run by construction: that figure is not judged
    judged = {stem: problems for stem, (_, problems) in drawn.items() if stem != "psnr_per_frame"}
    assert set(judged) == {"study_val_psnr", "study_collapse", "quirks_val_psnr", "study_real"}
    assert {stem: problems for stem, problems in judged.items() if problems} == {}


def test_main_tex_shows_each_figure_at_the_width_it_is_drawn():
    """A figure drawn at a share of the text width (lab4.plots.SHOWN) is shown at that share in main.tex, so
    that its 7 pt labels print at 7 pt."""
    import re
    from pathlib import Path

    from lab4 import plots

    tex = (Path(__file__).resolve().parents[1] / "report" / "main.tex").read_text()
    found = re.findall(r"\\includegraphics\[width=([0-9.]+)\\linewidth\]\{([a-z_]+)\}", tex)
    widths = {stem: float(w) for w, stem in found}
    assert {stem: widths.get(stem) for stem in plots.SHOWN} == plots.SHOWN
    assert widths["submission_strip"] == plots.SHOWN_STRIP
