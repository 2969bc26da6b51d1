#!/usr/bin/env bash
# Install what report/main.tex needs from Debian, if missing and if we can; else say how.
exec bash "$(dirname "$0")/apt_install.sh" "TeX (XeLaTeX, latexmk, CJK fonts)" \
  "texlive-xetex texlive-latex-recommended texlive-latex-extra texlive-lang-chinese texlive-fonts-recommended lmodern latexmk fonts-noto-cjk poppler-utils" \
  'command -v xelatex && command -v latexmk && command -v pdftotext && fc-list | grep -qi "Noto Sans CJK"' \
  "the PDF will be skipped"
