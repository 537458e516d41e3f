#!/usr/bin/env python3
"""Write llmb_plugin_deepseek_r1/workload.json from workload.yaml (see llmb_plugin_deepseek_r1/recipe.py).

Run after editing workload.yaml: `python scripts/compile_workload.py`. tests/test_recipe.py fails while the JSON
is stale; a stale one is never used (the dry run parses the YAML instead), so forgetting costs time, not results.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmb_plugin_deepseek_r1.recipe import write_compiled  # noqa: E402

if __name__ == "__main__":
    print(f"wrote {write_compiled()}")
