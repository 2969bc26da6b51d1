#!/usr/bin/env bash
# Install what report/main.tex needs from Debian, if missing and if we can; else say how.
PKGS="texlive-xetex texlive-latex-recommended texlive-latex-extra texlive-lang-chinese texlive-fonts-recommended lmodern latexmk fonts-noto-cjk poppler-utils"
if command -v xelatex >/dev/null && command -v latexmk >/dev/null && command -v pdftotext >/dev/null \
   && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing TeX (XeLaTeX, latexmk, CJK fonts) from Debian..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS >/dev/null && exit 0
  echo "warning: apt-get could not install TeX; the PDF will be skipped" >&2
  exit 0
fi
echo "TeX is missing; to build the PDF run:  sudo apt-get install --no-install-recommends $PKGS" >&2
exit 0
