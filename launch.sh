#!/bin/bash
# Direct method: `sbatch -A $SBATCH_ACCOUNT -p $SBATCH_PARTITION ./launch.sh` runs the same job body as llmb-run
# for the USE_CASES in the environment (default: all four), in this one allocation.
# SBATCH_TIMELIMIT in the environment overrides --time below (sbatch reads it); the default covers all four
# use cases (30 + 30 + 45 + 100 minutes).
#SBATCH --job-name=inference_deepseek-r1_671b_nvfp4
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --exclusive
#SBATCH --time=03:25:00
set -euo pipefail

: "${LLMB_INSTALL:?LLMB_INSTALL must be set to the top-level install directory}"
PYTHON="${LLMB_PYTHON:-python3}"
exec "$PYTHON" -m llmb_plugin_deepseek_r1 launch "$@"
