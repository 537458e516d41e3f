#!/bin/bash
# The recipe's setup script, as the installer runs it: inside the workload's venv, with LLMB_INSTALL (and
# HF_TOKEN) set. A thin wrapper: the steps (layout, weights, image, datasets) live in Python, shared with
# `llmb-run setup -w inference_deepseek-r1`. Options: ./setup.sh --help. Set LLMB_PYTHON to pick the interpreter.
set -euo pipefail
PYTHON="${LLMB_PYTHON:-python3}"
exec "$PYTHON" -m llmb_plugin_deepseek_r1 setup "$@"
