"""DeepSeek-R1 inference workload plugin for llmb-run (TensorRT-LLM trtllm-bench on GB200)."""

__version__ = "0.1.0"

WORKLOAD_KEY = "inference_deepseek-r1"
