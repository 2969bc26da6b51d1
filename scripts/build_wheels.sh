#!/usr/bin/env bash
# Wheels for the GPU device machine, downloaded here into .whl/ (gitignored), carried with the tree.
#
# The device machine has its own Python 3.12 with torch, numpy, matplotlib, pandas, pyyaml, psutil,
# requests, jinja2, ... but no papermill, nbclient, nbformat, ipykernel or Dask, and no network.
# This fetches exactly the packages it lacks (pinned: the versions this project's tests run with),
# checks that every requirement of every wheel is met either by another wheel or by a package the
# device image already has (its list: /work/.library/device/KINDS.md, copied below), and that the
# wheels stay well inside the 64 MiB a device call may carry. scripts/gpu_session.sh installs them.
#
#   bash scripts/build_wheels.sh            # or: make gpu-wheels
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DEST=.whl
LIMIT_MIB=${LIMIT_MIB:-40}   # the repo and its carried folders share 64 MiB

# what the device lacks: notebook execution (papermill -> nbclient -> jupyter_client -> ipykernel),
# the Dask executor of the experiment driver, and their own dependencies
WHEELS=(
  papermill==2.7.0 nbclient==0.11.0 nbformat==5.11.1 fastjsonschema==2.22.3 jsonschema==4.26.0
  jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 entrypoints==0.4.2
  tenacity==9.2.1
  jupyter_client==8.10.0 jupyter_core==5.9.1 traitlets==5.16.1 platformdirs==4.14.8 pyzmq==27.3.0
  tornado==6.6.1
  ipykernel==7.4.0 comm==0.2.3 debugpy==1.8.22 matplotlib-inline==0.2.2 nest-asyncio2==1.7.4
  ipython==9.18.1 ipython_pygments_lexers==1.1.1 jedi==0.20.1 parso==0.8.7
  pexpect==4.9.0 ptyprocess==0.7.0 prompt_toolkit==3.0.53 wcwidth==0.9.4 stack-data==0.6.3
  executing==2.3.0 asttokens==3.0.2 pure-eval==0.2.4
  dask==2026.8.0 distributed==2026.8.0 partd==1.4.2 locket==1.0.0 tblib==3.2.2 zict==3.0.0
)

# already on the device image (KINDS.md, "Python packages already there"; normalized names)
DEVICE_HAS="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-
bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch
grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-
loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-
extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-
cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile
nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-
headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-
cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov
pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich
sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
werkzeug wheel wrapt xarray xxhash yarl zipp"

mkdir -p "$DEST"
rm -f "$DEST"/*.whl
echo "gpu-wheels: downloading ${#WHEELS[@]} wheels for CPython 3.12 x86_64 into $DEST/"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$DEST" "${WHEELS[@]}"

# every Requires-Dist (for Python 3.12 on Linux, no extras) met by a wheel here or the device image
DEVICE_HAS="$DEVICE_HAS" "$PY" - "$DEST" "$LIMIT_MIB" <<'EOF'
import os, re, sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

dest, limit = Path(sys.argv[1]), float(sys.argv[2])
env = dict(python_version="3.12", python_full_version="3.12.3", sys_platform="linux", platform_system="Linux",
           platform_machine="x86_64", os_name="posix", implementation_name="cpython", extra="")
ROOTS = ["papermill", "nbclient", "nbformat", "ipykernel", "jupyter_client", "dask", "distributed"]
have = {canonicalize_name(n) for n in os.environ["DEVICE_HAS"].split()}
wheels = {}
for w in sorted(dest.glob("*.whl")):
    name, version, *_ = parse_wheel_filename(w.name)
    if name in wheels:
        sys.exit(f"gpu-wheels: two versions of {name} in {dest}/ (pip would refuse to install)")
    wheels[name] = (version, w)
missing, needed = [], {canonicalize_name(n) for n in ROOTS}
for name, (version, w) in wheels.items():
    with zipfile.ZipFile(w) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    for line in re.findall(r"^Requires-Dist: (.+)$", meta, re.M):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        dep = canonicalize_name(req.name)
        needed.add(dep)
        if dep in wheels:
            if not req.specifier.contains(wheels[dep][0], prereleases=True):
                missing.append(f"{name} needs {req}, carried {dep} {wheels[dep][0]}")
        elif dep not in have:
            missing.append(f"{name} needs {req}: neither carried nor on the device image")
unused = sorted(set(wheels) - needed)
if unused:
    missing.append(f"carried but required by nothing: {', '.join(unused)} (drop them from WHEELS)")
size = sum(w.stat().st_size for _, w in wheels.values()) / 2**20
print(f"gpu-wheels: {len(wheels)} wheels, {size:.1f} MiB (limit {limit:.0f} MiB)")
if missing:
    sys.exit("gpu-wheels: unmet requirements:\n  " + "\n  ".join(missing))
if size > limit:
    sys.exit(f"gpu-wheels: {size:.1f} MiB is over the {limit:.0f} MiB limit")
EOF
