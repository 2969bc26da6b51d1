#!/usr/bin/env bash
# Compile report/main.tex (or <report_dir>/main.tex) to <report_dir>/build/main.pdf with XeLaTeX.
# Usage: bash scripts/build_pdf.sh [report_dir]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPORT_DIR="${1:-$ROOT/report}"
PKGS="texlive-xetex texlive-latex-recommended texlive-latex-extra texlive-lang-chinese texlive-fonts-recommended lmodern latexmk fonts-noto-cjk poppler-utils"

if ! command -v xelatex >/dev/null || ! command -v latexmk >/dev/null; then
  echo "build_pdf: XeLaTeX/latexmk not found; skipping the PDF. Install them with:" >&2
  echo "  sudo apt-get install --no-install-recommends $PKGS" >&2
  exit 0
fi
if [ ! -f "$REPORT_DIR/main.tex" ]; then
  echo "build_pdf: $REPORT_DIR/main.tex not found" >&2
  exit 1
fi
if [ ! -f "$REPORT_DIR/generated/macros.tex" ]; then
  echo "build_pdf: $REPORT_DIR/generated/macros.tex is missing; run 'make figures' first" >&2
  exit 1
fi
cd "$REPORT_DIR"
mkdir -p build
if ! latexmk -xelatex -interaction=nonstopmode -halt-on-error -outdir=build main.tex >build/latexmk.log 2>&1; then
  echo "build_pdf: LaTeX failed; the end of the log ($REPORT_DIR/build/latexmk.log):" >&2
  if grep -q '^!' build/main.log 2>/dev/null; then
    grep -n -A3 '^!' build/main.log | head -40 >&2
  else
    tail -40 build/latexmk.log >&2
  fi
  exit 1
fi
echo "build_pdf: $REPORT_DIR/build/main.pdf"
