"""The report's sections in one list: for each, the functions that compute its macros, the values each of its
case macros may take, the generated file of its macros that report/main.tex inputs, its other generated files
(tables, listed sources) and its figures.

notebooks/03_compare.ipynb writes every generated file through ``write_generated`` and draws the optional
sections' figures through ``draw_figures``; ``lab4 report figures`` checks that each section's file was
written (``unwritten``). Adding a number: docs/adding-a-number.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab4.report import bonus, experimental_setup, figures, gpu, numbers, rankings
from lab4.report.comparisons import figure as comparisons_figure, noise, questions
from lab4.report.format import check_cases, macro_file
from lab4.report.loss import balance, dynamics, screen_record, tf_drop
from lab4.report.mechanism import control, figure as mechanism_figure, macros as mechanism
from lab4.report.mechanism.measures import mechanism_runs
from lab4.report.study import extra as study_extra, figures as study_figures, numbers as study_numbers
from lab4.report.study.roles import Roles, roles
from lab4.run.folder import load_runs
from lab4.run.questions import LAB_QUESTIONS, Question, read_questions
from lab4.util.paths import PACKAGE_DIR

GENERATED = Path("report") / "generated"  # 03_compare's default, under the checkout
# main.tex lists their code between "# report:" markers
LISTED_SOURCES = ("model.py", "schedules.py", "train.py", "evaluate.py")


@dataclass(frozen=True)
class Inputs:
    """What the report is built from: the grid's runs and, where there are any, a GPU session's runs and bench
    record, the study's runs, record and roles, and the lab-loss screen's records."""

    runs: list
    gpu_runs: list = field(default_factory=list)
    bench: dict | None = None
    study_runs: list = field(default_factory=list)
    study_record: dict = field(default_factory=dict)
    study_roles: Roles = field(default_factory=Roles)
    extra_runs: list = field(default_factory=list)
    mechanism_runs: list = field(default_factory=list)
    control_runs: list = field(default_factory=list)
    screen: list = field(default_factory=list)
    questions: tuple[Question, ...] = LAB_QUESTIONS
    noise: dict = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        runs_dir,
        gpu_dir=None,
        study_dir=None,
        screen_dir=None,
        study_grid=(),
        noise_dir=None,
        extra_dir=None,
        mechanism_dir=None,
        control_dir=None,
    ) -> Inputs:
        """From the folders (None or a missing folder: that section is absent). ``study_grid`` is study.yaml
        and study-extra.yaml as lab4.grid.spec.load_grid expands them: the caller reads them, as the report
        does not import the grid; ``extra_dir`` holds study-extra.yaml's runs (the quirks, real footage),
        ``mechanism_dir`` the mechanism grid's, ``control_dir`` the positive control's. The questions are the
        runs folder's (lab4.run.questions)."""
        gpu_runs, bench = gpu.load_gpu(gpu_dir) if gpu_dir else ([], None)
        study_runs, record = study_numbers.load_study(study_dir) if study_dir else ([], {})
        return cls(
            load_runs(runs_dir),
            gpu_runs=gpu_runs,
            bench=bench,
            study_runs=study_runs,
            study_record=record,
            study_roles=roles(study_grid),
            extra_runs=study_numbers.load_study(extra_dir)[0] if extra_dir else [],
            mechanism_runs=mechanism_runs(mechanism_dir) if mechanism_dir else [],
            control_runs=control.control_runs(control_dir),
            screen=screen_record.load(screen_dir) if screen_dir else [],
            questions=read_questions(runs_dir),
            noise=noise.load_noise(noise_dir),
        )


@dataclass(frozen=True)
class Section:
    """One part of the report. ``parts`` are called with ``reads(inputs)`` and each returns {macro: text};
    ``cases`` gives each case macro's values, each with a sentence in ``sentences``; ``tex`` is the generated
    file of the macros; ``files`` maps other generated files to their text (None: not written); ``figures``
    draws the section's figures; ``switch`` is the case macro that alone stands for an absent section, as
    main.tex's fallback without the file does."""

    name: str
    tex: str
    reads: Callable[[Inputs], tuple]
    parts: tuple[Callable[..., dict], ...]
    cases: dict
    files: dict = field(default_factory=dict)
    figures: Callable[[Inputs, Path], dict] | None = None
    sentences: str = "main.tex"
    switch: str | None = None

    def macros(self, inputs: Inputs) -> dict[str, str]:
        """Every macro of the section; a case macro outside its values is a bug in the code that chose it."""
        m: dict[str, str] = {}
        for part in self.parts:
            new = part(*self.reads(inputs))
            if set(new) & set(m):
                raise ValueError(f"{part.__name__} redefines {sorted(set(new) & set(m))}")
            m.update(new)
        if not (self.switch and m == {self.switch: "absent"}):
            check_cases(m, self.cases)
        return m


def _rows(about: str, rows: Callable[[Inputs], str | None]) -> Callable[[Inputs], str | None]:
    """A table body's file: ``rows``' text under a comment saying what it holds."""

    def text(inputs):
        body = rows(inputs)
        return None if body is None else f"% {about}; written by lab4.report.sections, do not edit\n{body}"

    return text


def _source(name: str) -> Callable[[Inputs], str]:
    """A listed source, from this package, so that an installed lab4 lists its own code."""
    return lambda inputs: (PACKAGE_DIR / name).read_text(encoding="utf-8")


SECTIONS = (
    Section(
        "main",
        "macros.tex",
        lambda i: (i.runs,),
        parts=(
            experimental_setup.setup_macros,
            numbers.strategy_macros,
            numbers.teacher_forcing_macros,
            numbers.best_run_macros,
            numbers.grad_norm_macros,
            numbers.drift_macros,
            dynamics.mse_kl_macros,
            dynamics.collapse_macros,
            dynamics.kl_share_macros,
            dynamics.convergence_macros,
            tf_drop.tf_drop_macros,
            tf_drop.exposure_macros,
            experimental_setup.compute_macros,
            rankings.ranking_macros,
            rankings.teacher_forcing_test_macros,
            rankings.baseline_test_macros,
        ),
        cases={
            **numbers.CASES,
            **dynamics.CASES,
            **tf_drop.CASES,
            **experimental_setup.CASES,
            **rankings.CASES,
        },
        files={
            "results_table.tex": _rows(
                "one row per strategy, main.tex has the header", lambda i: numbers.results_rows(i.runs)
            ),
            "hyperparameters.tex": _rows(
                "one row per setting, main.tex has the header",
                lambda i: experimental_setup.hyperparameter_rows(i.runs),
            ),
            **{f"src/{name}": _source(name) for name in LISTED_SOURCES},
        },
        figures=lambda i, d: figures.make_figures(i.runs, d),
    ),
    Section(
        "comparisons",
        "comparisons.tex",
        lambda i: (i.runs, i.questions),
        parts=(questions.question_macros,),
        cases={
            **{f"{q.key}{s}Case": questions.QUESTION_CASES for q in LAB_QUESTIONS for s in ("", "Lab")},
            "SeedCorrelationCase": questions.CORRELATION_CASES,
            "ScoreIsPrimary": ("yes", "no"),
            "SteadierCase": ("short", "lab", "unknown"),
        },
        files={
            "comparisons_table.tex": _rows(
                "one row per comparison and score, main.tex has the header",
                lambda i: questions.table_rows(i.runs, i.questions),
            )
        },
        figures=lambda i, d: {"comparisons": comparisons_figure.draw(i.runs, i.questions, d)},
    ),
    Section(
        "noise",
        "noise.tex",
        lambda i: (i.runs, i.study_runs, i.noise, i.questions),
        parts=(noise.noise_macros,),
        cases={"NoiseCase": ("measured", "absent")},
        files={
            "noise_table.tex": _rows(
                "one row per source of noise, main.tex has the header",
                lambda i: noise.noise_rows(i.runs, i.study_runs, i.noise, i.questions),
            ),
            "power_table.tex": _rows(
                "one row per score, main.tex has the header", lambda i: noise.power_rows(i.runs, i.questions)
            ),
        },
        switch="NoiseCase",
    ),
    Section(
        "mechanism",
        "mechanism.tex",
        lambda i: (i.mechanism_runs,),
        parts=(mechanism.mechanism_macros,),
        cases=mechanism.CASES,
        figures=lambda i, d: {"mechanism": mechanism_figure.mechanism_figure(i.mechanism_runs, d)},
        switch="MechCase",
    ),
    Section(
        "control",
        "control.tex",
        lambda i: (i.control_runs,),
        parts=(control.control_macros,),
        cases=control.CASES,
        figures=lambda i, d: {"control": control.control_figure(i.control_runs, d)},
        switch="CtlCase",
    ),
    Section(
        "gpu",
        "gpu.tex",
        lambda i: (i.gpu_runs, i.runs, i.bench),
        parts=(gpu.gpu_macros,),
        cases=gpu.CASES,
        files={
            "gpu_results_table.tex": _rows(
                "one row per strategy of the GPU runs",
                lambda i: numbers.results_rows(i.gpu_runs) if i.gpu_runs else None,
            )
        },
        figures=lambda i, d: gpu.draw_figures(i.gpu_runs, d),
        switch="GpuCase",
    ),
    Section(
        "study",
        "study.tex",
        lambda i: (i.study_runs, i.study_record, i.runs),
        parts=(study_numbers.study_macros,),
        cases=study_numbers.CASES,
        files={
            "study_results_table.tex": _rows(
                "one row per schedule of the study", lambda i: study_numbers.results_rows(i.study_runs)
            )
        },
        figures=lambda i, d: study_figures.make_figures(i.study_runs, Path(d) / "study", i.study_roles),
        switch="StudyCase",
    ),
    Section(
        "study extra",
        "studyextra.tex",
        lambda i: (i.extra_runs, i.study_roles),
        parts=(study_extra.extra_macros,),
        cases=study_extra.EXTRA_CASES,
        files={
            "extra_results_table.tex": _rows(
                "one row per quirk and reference of the extra grid",
                lambda i: study_extra.extra_rows(i.extra_runs, i.study_roles),
            )
        },
        figures=lambda i, d: study_figures.extra_figures(i.extra_runs, Path(d) / "study", i.study_roles),
        switch="ExtraCase",
    ),
    Section(
        "loss balance",
        "lossbalance.tex",
        lambda i: (i.runs, i.screen),
        parts=(balance.loss_balance_macros,),
        cases=balance.CASES,
        switch="LossBalanceCase",
    ),
    Section(
        "bonus",
        "bonus.tex",
        lambda i: (i.runs,),
        parts=(bonus.bonus_macros,),
        cases=bonus.CASES,
        files={
            "bonus_rows.tex": _rows(
                "one row per strategy, report/bonus.tex has the header", lambda i: bonus.bonus_rows(i.runs)
            )
        },
        sentences="bonus.tex",
    ),
)


def _chosen(names) -> list[Section]:
    unknown = set(names or ()) - {s.name for s in SECTIONS}
    if unknown:
        raise ValueError(
            f"no report section {sorted(unknown)}; the sections are {[s.name for s in SECTIONS]}"
        )
    return [s for s in SECTIONS if not names or s.name in names]


def write_generated(inputs: Inputs, generated_dir, names=None) -> dict[str, Path]:
    """Every section's generated files under ``generated_dir`` (``names``: those sections' only), {file:
    path}."""
    out = {}
    for s in _chosen(names):
        texts = {
            s.tex: macro_file(f"lab4.report.sections ({s.name})", s.macros(inputs)),
            **{rel: text(inputs) for rel, text in s.files.items()},
        }
        for rel, text in texts.items():
            if text is not None:
                out[rel] = Path(generated_dir) / rel
                out[rel].parent.mkdir(parents=True, exist_ok=True)
                out[rel].write_text(text, encoding="utf-8")
    return out


def draw_figures(inputs: Inputs, figures_dir, names=None) -> dict[str, dict]:
    """Every section's figures under ``figures_dir`` (``names``: those sections' only), {section: its
    figures}."""
    return {s.name: s.figures(inputs, Path(figures_dir)) for s in _chosen(names) if s.figures is not None}


def unwritten(generated_dir, since: float = 0.0) -> list[str]:
    """The sections' macro files that ``generated_dir`` lacks or holds from before ``since`` (a time
    stamp)."""
    gen = Path(generated_dir)
    return [s.tex for s in SECTIONS if not (gen / s.tex).is_file() or (gen / s.tex).stat().st_mtime < since]
