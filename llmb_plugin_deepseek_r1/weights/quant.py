"""Which quantization a --dtype asks for, and whether the checkpoint declares it.

ModelOpt checkpoints (NVFP4, FP8) declare it in ``hf_quant_config.json``: ``{"quantization": {"quant_algo":
"NVFP4", ...}}``; DeepSeek's own FP8 release declares ``quantization_config.quant_method = "fp8"`` in
config.json; a bf16 checkpoint declares neither.
"""

from __future__ import annotations

from .report import Problem

QUANT_CONFIG = "hf_quant_config.json"
# --dtype -> the quant_algo hf_quant_config.json must name (None: an unquantized checkpoint).
DTYPE_QUANT_ALGO: dict[str, str | None] = {"nvfp4": "NVFP4", "fp8": "FP8", "bf16": None}


def validate_dtype(dtype: str) -> str:
    """Normalise --dtype, or raise ValueError naming what is accepted."""
    key = dtype.strip().lower()
    if key not in DTYPE_QUANT_ALGO:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPE_QUANT_ALGO)}")
    return key


def check_quantization(dtype: str, quant: object | None, quant_present: bool, config: object | None) -> list[Problem]:
    """Compare the checkpoint's declared quantization with the requested --dtype."""
    want = DTYPE_QUANT_ALGO[dtype]
    cfg_q = config.get("quantization_config") if isinstance(config, dict) else None
    if quant_present and quant is not None:
        q = quant.get("quantization") if isinstance(quant, dict) else None
        algo = q.get("quant_algo") if isinstance(q, dict) else None
        if want is None:
            if algo:
                return [
                    Problem(
                        QUANT_CONFIG,
                        "quantization_mismatch",
                        f"checkpoint is quantized ({algo}); --dtype {dtype} wants an unquantized one",
                    )
                ]
            return []
        if not isinstance(algo, str) or algo.upper() != want:
            return [
                Problem(
                    QUANT_CONFIG,
                    "quantization_mismatch",
                    f"quantization.quant_algo is {algo!r}; --dtype {dtype} needs {want!r}",
                )
            ]
        return []
    if quant_present:
        return []  # unreadable/unparsable: already reported by _read_json
    method = cfg_q.get("quant_method") if isinstance(cfg_q, dict) else None
    if want == "NVFP4" and _is_fp8_form(config):
        return [
            Problem(
                "config.json",
                "quantization_mismatch",
                "the folder holds DeepSeek's FP8 checkpoint (config.json quantization_config.quant_method: fp8, no "
                f"{QUANT_CONFIG}); --dtype {dtype} needs an NVFP4 one such as nvidia/DeepSeek-R1-0528-FP4",
            )
        ]
    if want is None and method:
        return [
            Problem(
                "config.json",
                "quantization_mismatch",
                f"quantization_config.quant_method is {method!r}; --dtype {dtype} wants an unquantized checkpoint",
            )
        ]
    return []


def _is_fp8_form(config: object | None) -> bool:
    """DeepSeek's own FP8 release (deepseek-ai/DeepSeek-R1): ``quantization_config.quant_method: fp8`` in
    config.json (block-wise e4m3 weights with scale_inv tensors), and no hf_quant_config.json."""
    q = config.get("quantization_config") if isinstance(config, dict) else None
    method = q.get("quant_method") if isinstance(q, dict) else None
    return str(method).lower() == "fp8"


def needs_quant_config(dtype: str, config: object | None) -> bool:
    """Whether hf_quant_config.json is required for ``dtype`` (FP8 may declare itself in config.json; a folder
    in that form asked to be NVFP4 is reported as a mismatch on config.json instead of a missing file)."""
    if dtype in ("nvfp4", "fp8"):
        return not _is_fp8_form(config)
    return False
