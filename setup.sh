#!/bin/bash
# The recipe's setup script, as the installer runs it: in the recipe folder, inside the workload's venv, with
# LLMB_INSTALL (and HF_TOKEN) set (llmb-install >= 1.9 runs it as the setup task of metadata.yaml; the 25.07
# installer as setup_script). It installs this package into the active venv when it is missing there, then runs
# the steps (layout, weights, image, datasets) that live in Python, shared with
# `llmb-run setup -w inference_deepseek-r1`. Options: ./setup.sh --help. Set LLMB_PYTHON to pick the interpreter.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON="${LLMB_PYTHON:-python3}"
# Installed with its dependencies? (asked from /: the recipe folder, the installer's working directory, holds the
# package's source, which alone is not enough)
if ! (cd / && "$PYTHON" -c "import llmb_plugin_deepseek_r1.host") >/dev/null 2>&1; then
  if [ -z "${VIRTUAL_ENV:-}" ]; then
    echo "setup.sh: $PYTHON cannot import llmb_plugin_deepseek_r1 and no venv is active: pip install $HERE" >&2
    exit 1
  fi
  echo "setup.sh: installing $HERE into $VIRTUAL_ENV"
  if command -v uv >/dev/null 2>&1; then
    uv pip install --python "$PYTHON" "$HERE"
  else
    "$PYTHON" -m pip install "$HERE"
  fi
fi
exec "$PYTHON" -m llmb_plugin_deepseek_r1 setup "$@"
