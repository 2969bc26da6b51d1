"""The report's longer-budget section, from what `make study` committed to ``results/study/``.

numbers.py chooses the section's sentences (the ranking with the report's own test, when latent units become
active, where validation PSNR flattens, each template quirk against Monotonic, the real-footage verdict) for
``generated/study.tex`` (written through lab4.report.sections); figures.py draws ``figures/study/``; roles.py
reads which run is which from study.yaml. Without results/study/ the section is one sentence.
"""
