#!/usr/bin/env bash
# One prepared GPU session: installs the carried wheels, then runs lab4 gpucheck within BUDGET_S seconds (docs/gpu-session.md).
#
#   BUDGET_S=480 bash scripts/gpu_session.sh [extra `lab4 gpucheck` flags, e.g. --steps bench,grid]
#
# On the device machine (its own python3 with torch, no network):
#  1. installs the wheels carried in .whl/ (made here by `make gpu-wheels`), offline, into /tmp/lab4-site:
#     papermill, nbclient, nbformat (+ jsonschema, fastjsonschema, referencing, rpds-py,
#     jsonschema-specifications, entrypoints, tenacity), jupyter_client, jupyter_core, traitlets,
#     platformdirs, pyzmq, tornado, ipykernel (+ comm, debugpy, matplotlib-inline, nest-asyncio2),
#     ipython (+ ipython_pygments_lexers, jedi, parso, pexpect, ptyprocess, prompt_toolkit, wcwidth,
#     stack-data, executing, asttokens, pure-eval), dask, distributed (+ partd, locket, tblib, zict);
#  2. registers the `lab4` Jupyter kernel for that python3 (the notebooks run on it through papermill);
#  3. runs `python3 -m lab4 gpucheck` with what is left of BUDGET_S (seconds, all steps together);
#  4. packs what comes back into $OUT, within the device tool's limits (8 files, 2 folders deep):
#     results.tar.gz (results/bench/<gpu>.json + results/gpu/), gpucheck.json, <gpu>.json,
#     session.log, notebooks.tar.gz (the executed notebooks, for a failed run's traceback).
# Locally (no $OUT) it writes to ./gpu-out/. A rehearsal on the CPU with this checkout's venv:
#   WHEELS=none PY=.venv/bin/python BUDGET_S=600 bash scripts/gpu_session.sh --dry-run
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
PY=${PY:-python3}
BUDGET_S=${BUDGET_S:-480}
OUT=${OUT:-$PWD/gpu-out}
WORK=${WORK:-/tmp/lab4-gpucheck}
SITE=/tmp/lab4-site
WHEELS=${WHEELS:-.whl}   # none: use the installed packages (a rehearsal here: the wheels are for Python 3.12)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

session() {
echo "gpu_session: $(date -u +%FT%TZ) budget ${BUDGET_S}s, out $OUT, work $WORK"

if [ "$WHEELS" != none ] && compgen -G "$WHEELS/*.whl" >/dev/null; then
  echo "gpu_session: installing $(ls "$WHEELS"/*.whl | wc -l) carried wheels into $SITE (offline)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
    || { echo "gpu_session: error: installing .whl/ failed"; return 3; }
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "gpu_session: no .whl/ here: using the installed packages (run 'make gpu-wheels' for the device)"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import papermill, nbclient, ipykernel, distributed, lab4" \
  || { echo "gpu_session: error: papermill/nbclient/ipykernel/distributed/lab4 do not import"; return 3; }

# the kernel the driver asks for by name, pointing at this python3 (kernels inherit PYTHONPATH)
"$PY" -m ipykernel install --prefix /tmp/lab4-jupyter --name lab4 --display-name "Python (lab4)" >/dev/null \
  || { echo "gpu_session: error: registering the lab4 kernel failed"; return 3; }
export JUPYTER_PATH="/tmp/lab4-jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"

LEFT=$(( BUDGET_S - ($(date +%s) - T0) - 15 ))  # 15 s kept for packing
echo "gpu_session: setup took $(( $(date +%s) - T0 ))s; lab4 gpucheck gets ${LEFT}s"
"$PY" -m lab4 gpucheck --out "$WORK" --budget-s "$LEFT" "$@"
RC=$?

# what comes back: at most 8 files, none deeper than 2 folders; so the result folders travel as tarballs
[ -d "$WORK/results" ] && tar -czf "$OUT/results.tar.gz" -C "$WORK" results
cp "$WORK/gpucheck.json" "$OUT/" 2>/dev/null
cp "$WORK"/results/bench/*.json "$OUT/" 2>/dev/null
find "$WORK/work" -name '*.ipynb' -not -path '*checkpoints*' -print0 2>/dev/null \
  | tar -czf "$OUT/notebooks.tar.gz" --null -T - 2>/dev/null
ls -l "$OUT"
echo "gpu_session: lab4 gpucheck exit $RC after $(( $(date +%s) - T0 ))s"
return $RC
}

session "$@" 2>&1 | tee "$OUT/session.log"
exit "${PIPESTATUS[0]}"
