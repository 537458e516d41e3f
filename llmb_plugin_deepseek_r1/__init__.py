"""DeepSeek-R1 inference workload plugin for llmb-run (TensorRT-LLM trtllm-bench on GB200).

The package is the pipeline, one folder per stage (see README's Design section):
``host`` (llmb-run) -> ``planning`` (knobs -> RunSpec -> JobPlan) -> submission (``host``) -> ``job`` (the job
body) -> ``document`` (the result file) -> ``results``; ``report``, ``dataset`` and ``weights`` are the libraries
the job body and ``setup`` use.
"""

from .recipe import MODEL_NAME, WORKLOAD_KEY

__version__ = "0.1.0"
__all__ = ["MODEL_NAME", "WORKLOAD_KEY", "__version__"]
