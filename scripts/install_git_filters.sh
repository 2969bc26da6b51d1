#!/usr/bin/env bash
# Notebooks are committed without outputs: route *.ipynb (see .gitattributes) through nbstripout on `git add`,
# so that JupyterLab's autosaves never make the repository dirty. `make setup` runs this in the checkout.
# Usage: bash scripts/install_git_filters.sh [python]   (default: the venv's; run inside the repository)
PY="${1:-$PWD/.venv/bin/python}"
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "not a git checkout: notebook output filter not installed" >&2
  exit 0
fi
# Kept: cell ids (the committed ones stay as they are) and tags (the papermill `parameters` cell).
# Stripped besides outputs and counts: what JupyterLab and papermill add to the metadata on save.
KEYS="metadata.language_info.codemirror_mode metadata.language_info.file_extension metadata.language_info.mimetype
metadata.language_info.nbconvert_exporter metadata.language_info.pygments_lexer metadata.language_info.version
metadata.papermill cell.metadata.papermill cell.metadata.trusted"
git config filter.nbstripout.clean "\"$PY\" -m nbstripout --keep-id"
git config filter.nbstripout.smudge cat
git config filter.nbstripout.required true
git config filter.nbstripout.extrakeys "$(echo $KEYS)"
git config diff.ipynb.textconv "\"$PY\" -m nbstripout --keep-id -t"
