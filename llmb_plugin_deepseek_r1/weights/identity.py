"""Which checkpoint (Hugging Face repo id and revision) a model folder actually holds.

NVIDIA's 25.10+ recipe downloads ``nvidia/DeepSeek-R1-0528-FP4`` into the folder the seed filled with
``nvidia/DeepSeek-R1-FP4``, so the folder name says nothing. Read, in order: setup's manifest (repo and
revision), a Hugging Face cache snapshot (``models--org--name/snapshots/<commit>``), a git clone (remote URL
and HEAD), ``hf download --local-dir`` metadata (the commit), and last the checkpoint's own config files (the
form of its quantization: ModelOpt NVFP4, or DeepSeek's FP8 ``quantization_config``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _from_manifest(model_dir: Path) -> dict[str, Any] | None:
    from .manifest import manifest_paths

    for path in manifest_paths(model_dir):
        doc = _json(path) if path.is_file() else None
        if isinstance(doc, dict) and isinstance(doc.get("repo_id"), str):
            revision = doc.get("revision") if isinstance(doc.get("revision"), str) else None
            return {"repo_id": doc["repo_id"], "revision": revision, "source": f"manifest {path}"}
    return None


def _from_hf_cache(model_dir: Path) -> dict[str, Any] | None:
    from .manifest import hf_cache_repo_id

    repo = hf_cache_repo_id(model_dir)
    if repo is None:
        return None
    return {"repo_id": repo, "revision": model_dir.resolve().name, "source": "Hugging Face cache snapshot"}


def _from_git(model_dir: Path) -> dict[str, Any] | None:
    from .manifest import _git, _repo_id_from_url

    if not (model_dir / ".git").exists():
        return None
    url = _git(["config", "--get", "remote.origin.url"], model_dir)
    head = _git(["rev-parse", "HEAD"], model_dir)
    repo = _repo_id_from_url(url.decode()) if url else None
    if repo is None and head is None:
        return None
    return {"repo_id": repo, "revision": head.decode().strip() if head else None, "source": "git clone"}


def _local_dir_commit(model_dir: Path) -> str | None:
    """``hf download --local-dir`` writes ``.cache/huggingface/download/<file>.metadata``: commit, etag, time."""
    base = model_dir / ".cache" / "huggingface" / "download"
    for meta in sorted(base.glob("*.metadata")) if base.is_dir() else []:
        try:
            first = meta.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, UnicodeDecodeError, IndexError):
            continue
        if len(first) == 40 and all(c in "0123456789abcdef" for c in first):
            return first
    return None


def _from_config(model_dir: Path) -> dict[str, Any] | None:
    """The checkpoint form: NVFP4 (ModelOpt's hf_quant_config.json) or DeepSeek's FP8 release (config.json's
    quantization_config.quant_method == fp8, no hf_quant_config.json). Gives the family, not the exact repo."""
    config = _json(model_dir / "config.json")
    quant = _json(model_dir / "hf_quant_config.json")
    name = config.get("_name_or_path") if isinstance(config, dict) else None
    repo = name if isinstance(name, str) and name.count("/") == 1 and not name.startswith("/") else None
    if isinstance(quant, dict):
        algo = (quant.get("quantization") or {}).get("quant_algo") if isinstance(quant.get("quantization"), dict) \
            else None
        return {"repo_id": repo, "revision": None, "source": "config files", "form": str(algo or "unknown")}
    q = config.get("quantization_config") if isinstance(config, dict) else None
    if isinstance(q, dict) and str(q.get("quant_method")).lower() == "fp8":
        return {"repo_id": repo or "deepseek-ai/DeepSeek-R1", "revision": None,
                "source": "config files (DeepSeek FP8 form)", "form": "FP8"}
    if isinstance(config, dict):
        return {"repo_id": repo, "revision": None, "source": "config files", "form": "unquantized"}
    return None


def checkpoint_identity(model_dir: Path) -> dict[str, Any]:
    """{"repo_id", "revision", "source"} of what the folder holds; values None where nothing tells."""
    model_dir = Path(model_dir)
    for reader in (_from_manifest, _from_hf_cache, _from_git):
        found = reader(model_dir)
        if found and found.get("repo_id"):
            return found
    found = _from_config(model_dir) or {"repo_id": None, "revision": None, "source": "nothing in the folder says"}
    commit = _local_dir_commit(model_dir)
    if commit and not found.get("revision"):
        found = {**found, "revision": commit, "source": found["source"] + " + hf download metadata"}
    return found


def identity_mismatch(identity: dict[str, Any], repo_id: str | None, revision: str | None) -> str | None:
    """Why the folder is not the checkpoint a profile expects, or None (unknown facts are not a mismatch)."""
    held = identity.get("repo_id")
    if repo_id and held and held.lower() != repo_id.lower():
        return f"the folder holds {held} ({identity.get('source')}), but the profile was tuned for {repo_id}"
    held_rev = identity.get("revision")
    if revision and revision != "main" and held_rev and not held_rev.startswith(revision) \
            and not revision.startswith(held_rev):
        return f"the folder holds revision {held_rev} of {held or repo_id}, but {revision} was asked for"
    return None
