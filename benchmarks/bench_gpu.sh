#!/usr/bin/env bash
# Throughput on a GPU: the training and deployment benchmarks, then one paper-profile epoch of
# notebook 03 (issue "every stage near the compute bound"). Nothing in the test suite needs a
# GPU; this script is for a machine that has one.
#
#   bash benchmarks/bench_gpu.sh            # from the repository root, after `make install`
#
# Environment:
#   WHEELS=DIR      install the CUDA extra from local wheels (pip --no-index --find-links DIR),
#                   for a machine without internet; otherwise from PyPI
#   SECONDS_PER=N   timed seconds per benchmark line (default 10)
#   RUN_DIR=DIR     the paper-profile run folder (default build/paper/run); when it holds no
#                   data yet, notebook 01 simulates them (paper profile: 2 M training and
#                   1.05 M test cutouts, on every core) and notebook 02 writes the label ledger
#                   with 2 folds of 1 epoch (the ledger only feeds notebook 03 here: its
#                   quality is not what is timed; the full 02 is five fold models, hours)
#   SKIP_NOTEBOOK=1 only the benchmarks
#
# Prints the JAX device, each benchmark's lines (figure and fraction of the GEMM bound
# measured on the same device; float32 products may use TF32 there, as JAX's default
# precision allows), and the notebook epoch's wall time and samples/s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SECONDS_PER=${SECONDS_PER:-10}
RUN_DIR=${RUN_DIR:-build/paper/run}

if ! $PY -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
  echo "# installing the CUDA extra (.[gpu])"
  if [[ -n "${WHEELS:-}" ]]; then
    $PY -m pip install --quiet --no-index --find-links "$WHEELS" -e ".[gpu]"
  else
    $PY -m pip install --quiet -e ".[gpu]"
  fi
fi
$PY -c "import jax; print('# jax', jax.__version__, jax.devices())"
if ! $PY -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')"; then
  echo "bench_gpu.sh: JAX sees no GPU after installing .[gpu]; stopping" >&2
  exit 1
fi

echo "## benchmarks/bench_training.py (the talk's CNN, then the paper's ResNet)"
$PY benchmarks/bench_training.py --seconds "$SECONDS_PER" --architecture RBCNN --architecture PaperResNet
echo "## benchmarks/bench_deployment.py"
$PY benchmarks/bench_deployment.py --seconds "$SECONDS_PER"

if [[ "${SKIP_NOTEBOOK:-0}" == 1 ]]; then
  exit 0
fi
out=$(mktemp -d)
stage() {  # stage NAME NOTEBOOK [papermill args...]: run one notebook, print its wall time
  local name=$1 nb=$2 t0
  shift 2
  t0=$(date +%s)
  $PY -m papermill "notebooks/$nb" "$out/$nb" -p profile paper -p run_dir "$RUN_DIR" \
    -p figures_dir "$out/figures" "$@" --log-level WARNING
  echo "$name: $(($(date +%s) - t0)) s wall"
}
if [[ ! -d "$RUN_DIR/data/train" ]]; then
  echo "## notebook 01, paper profile (the data of notebook 03)"
  stage "notebook 01 (paper)" 01_data_preparation.ipynb -p n_threads "$(nproc)"
fi
if [[ ! -f "$RUN_DIR/label_ledger.csv" ]]; then
  echo "## notebook 02, paper profile, 2 folds of 1 epoch (the label ledger of notebook 03)"
  stage "notebook 02 (paper, 2 folds x 1 epoch)" 02_mislabel_discovery.ipynb -p n_folds 2 -p epochs 1
fi
echo "## notebook 03, paper profile, one epoch, one sweep point"
start=$(date +%s)
$PY -m papermill notebooks/03_vat_training.ipynb "$out/03.ipynb" --log-level WARNING \
  -p profile paper -p run_dir "$RUN_DIR" -p epochs 1 -p progress False \
  -y "sweep_eps: [0.1]
sweep_alpha: [1.0]
figures_dir: $out/figures"
end=$(date +%s)
n=$($PY -c "
from rbcore.datasets import load_training
print(len(load_training('$RUN_DIR/data/train').images))")
echo "notebook 03 (paper, 1 epoch): $((end - start)) s wall for $n training samples;" \
  "$(( n / (end - start > 0 ? end - start : 1) )) samples/s over the whole notebook" \
  "(two models of 1 epoch, one sweep point of the profile's sweep_epochs, plus evaluation)"
