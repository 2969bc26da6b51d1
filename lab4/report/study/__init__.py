"""The report's longer-budget section, from what `make study` committed to ``results/study/``.

numbers.py chooses the section's sentences (the ranking with the report's own test, when latent units become
active, where validation PSNR flattens, each template quirk against Monotonic, the real-footage verdict) and
writes ``generated/study.tex``; figures.py draws ``figures/study/``. Without results/study/ the section is one
sentence.
"""
