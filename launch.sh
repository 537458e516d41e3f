#!/bin/bash
# The recipe's launch script. Two ways in:
#  - Direct method: `sbatch -A $SBATCH_ACCOUNT -p $SBATCH_PARTITION ./launch.sh` runs the same job body as
#    llmb-run for the USE_CASES in the environment (default: all four), in this one allocation.
#  - NVIDIA's llmb-run (1.2 `single`, 1.15 `submit`) finds this folder by metadata.yaml and runs
#    `sbatch ... launch.sh` here, with MODEL_SIZE, DTYPE, JOB_TOTAL_GPUS, GPU_TYPE and SBATCH_* set.
# SBATCH_TIMELIMIT in the environment overrides --time below (sbatch reads it); the default covers all four
# use cases (30 + 30 + 45 + 100 minutes).
#SBATCH --job-name=inference_deepseek-r1_671b_nvfp4
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --exclusive
#SBATCH --time=03:25:00
set -euo pipefail

: "${LLMB_INSTALL:?LLMB_INSTALL must be set to the top-level install directory}"
WORKLOAD_KEY=inference_deepseek-r1
MODULE=llmb_plugin_deepseek_r1

# Can this Python run the plugin (its dependencies included)? Asked from / so that the recipe folder itself,
# the working directory of NVIDIA's sbatch, does not count as an installed package.
can_run() { [ -x "$1" ] && (cd / && "$1" -c "import $MODULE.host" >/dev/null 2>&1); }

# workloads.config.<key>.venv_path of cluster_config.yaml (./ first, then $LLMB_INSTALL/, as llmb-run looks).
# A small indentation-aware reader, so that finding the Python needs no Python.
configured_venv() {
  local cfg
  for cfg in "$PWD/cluster_config.yaml" "$LLMB_INSTALL/cluster_config.yaml"; do
    [ -f "$cfg" ] || continue
    awk -v want="workloads/config/$WORKLOAD_KEY/venv_path" '
      /^[[:space:]]*(#.*)?$/ { next }
      {
        match($0, /^ */); ind = RLENGTH; line = substr($0, ind + 1)
        if (found) {  # a long plain value folded onto more-indented lines
          if (ind > found_ind) { val = val " " line; next }
          print val; found = 0; exit
        }
        if (line ~ /^- / || index(line, ":") == 0) next
        k = substr(line, 1, index(line, ":") - 1); gsub(/^["'\'']|["'\'']$/, "", k)
        v = substr(line, index(line, ":") + 1); sub(/^[[:space:]]+/, "", v); sub(/[[:space:]]+#.*$/, "", v)
        gsub(/^["'\'']|["'\'']$/, "", v)
        while (n > 0 && inds[n] >= ind) n--
        n++; inds[n] = ind; keys[n] = k
        path = keys[1]; for (i = 2; i <= n; i++) path = path "/" keys[i]
        if (path == want && v != "" && v != "null") { found = 1; found_ind = ind; val = v }
      }
      END { if (found) print val }' "$cfg"
    return 0
  done
}

choose_python() {
  if [ -n "${LLMB_PYTHON:-}" ]; then
    PYTHON=$LLMB_PYTHON; PYTHON_FROM="LLMB_PYTHON"; return 0
  fi
  local venv py
  venv=$(configured_venv)
  if [ -n "$venv" ]; then
    if can_run "$venv/bin/python3"; then
      PYTHON=$venv/bin/python3; PYTHON_FROM="cluster_config.yaml workloads.config.$WORKLOAD_KEY.venv_path"; return 0
    fi
    echo "launch.sh: $venv/bin/python3 (cluster_config.yaml venv_path) cannot import $MODULE; looking further" >&2
  fi
  for py in "$LLMB_INSTALL"/venvs/*/bin/python3; do
    if can_run "$py"; then PYTHON=$py; PYTHON_FROM="\$LLMB_INSTALL/venvs"; return 0; fi
  done
  if can_run "$(command -v python3 || true)"; then
    PYTHON=$(command -v python3); PYTHON_FROM="python3 on PATH"; return 0
  fi
  echo "launch.sh: no Python with $MODULE found (tried LLMB_PYTHON, cluster_config.yaml workloads.config.$WORKLOAD_KEY.venv_path, \$LLMB_INSTALL/venvs/*/bin/python3, python3 on PATH): install the workload (llmb-install, or pip install this folder into its venv)" >&2
  exit 1
}

choose_python
echo "launch.sh: using Python $PYTHON (from $PYTHON_FROM)"
exec "$PYTHON" -m "$MODULE" launch "$@"
