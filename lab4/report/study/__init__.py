"""The report's longer-budget sections, from what `make study` and `make study-extra` committed.

numbers.py chooses the study's sentences (results/study/: the KL question with the report's own test, when
latent units become active, where validation PSNR flattens) for ``generated/study.tex``; extra.py the extra
grid's (results/study-extra/: each template quirk against Monotonic, the real-footage verdict) for
``generated/studyextra.tex``, both written through lab4.report.sections; figures.py draws ``figures/study/``;
roles.py reads which run is which from the grid files. Each section is one sentence or none without its
folder.
"""
