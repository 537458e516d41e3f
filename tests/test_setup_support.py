"""Helpers for the setup tests (no tests here): a Hugging Face cache built by hand in the hub's own layout,
the stand-in enroot on PATH, and the environment a setup subprocess gets.

Why a hand-built cache: tests must never touch the network, so the weights step runs with HF_HUB_OFFLINE=1
against ``models--nvidia--DeepSeek-R1-FP4/{refs/main, snapshots/<commit>/..., blobs/<sha256 or git blob id>}``
holding a tiny but real checkpoint (safetensors shards written by the safetensors library).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import KNOB_VARS
from weights_fixtures import make_checkpoint

REPO = Path(__file__).resolve().parent.parent
FAKE_ENROOT_DIR = REPO / "tests" / "fake_enroot"
REPO_ID = "nvidia/DeepSeek-R1-FP4"
COMMIT = "5f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
VOCAB_SIZE = 1000
EOS_ID = 1
IMAGE_NAME = "tensorrt-llm+release+1.0.0rc1.sqsh"
LFS_SUFFIXES = (".safetensors",)
LFS_NAMES = ("tokenizer.json",)
# Settings a developer may have exported; setup tests start from a clean slate: every knob of the registry (as
# conftest clears them) and the Hugging Face hub's own variables, which setup reads through huggingface_hub.
SCRUB = (*KNOB_VARS, "HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "CONDA_PREFIX",
         "TRANSFORMERS_OFFLINE")


def git_blob_id(data: bytes) -> str:
    """What git (and the hub, for small files) calls a file: sha1 of ``blob <size>\\0<content>``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(name: str) -> bool:
    return name.endswith(LFS_SUFFIXES) or name in LFS_NAMES


def make_hf_cache(cache: Path, *, shards: int = 3, commit: str = COMMIT) -> Path:
    """A hub cache holding a tiny DeepSeek-R1-FP4 checkpoint; returns its snapshot folder.

    LFS files (shards, tokenizer.json) are stored as ``blobs/<sha256>``, the others as ``blobs/<git blob id>``,
    and the snapshot links to them relatively, exactly as huggingface_hub lays a cache out.
    """
    staging = cache.parent / f".staging-{os.getpid()}-{commit[:8]}"
    make_checkpoint(staging, shards=shards)
    config = json.loads((staging / "config.json").read_text())
    config.update(vocab_size=VOCAB_SIZE, eos_token_id=EOS_ID)
    (staging / "config.json").write_text(json.dumps(config, indent=1))
    repo = cache / f"models--{REPO_ID.replace('/', '--')}"
    blobs = repo / "blobs"
    snapshot = repo / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in sorted(staging.iterdir()):
        data = path.read_bytes()
        blob = hashlib.sha256(data).hexdigest() if is_lfs(path.name) else git_blob_id(data)
        (blobs / blob).write_bytes(data)
        (snapshot / path.name).symlink_to(Path("..") / ".." / "blobs" / blob)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.rmtree(staging)
    return snapshot


def expected_digests(snapshot: Path) -> dict[str, str]:
    """{file: digest} the manifest must record: the blob names."""
    return {p.name: os.path.basename(os.readlink(p)) for p in snapshot.iterdir()}


def setup_env(install: Path, hf_home: Path | None = None, *, enroot: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a setup subprocess: offline hub with our cache, the stand-in enroot first on PATH,
    small datasets, no venv warning noise (MANUAL_INSTALL=false, as the installer sets it)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    path = env.get("PATH", "/usr/bin:/bin")
    if enroot:
        path = f"{FAKE_ENROOT_DIR}{os.pathsep}{path}"
    else:
        path = os.pathsep.join(p for p in path.split(os.pathsep) if not (Path(p) / "enroot").exists())
    env.update(LLMB_INSTALL=str(install), PATH=path, HF_HUB_OFFLINE="1", MANUAL_INSTALL="false",
               USE_CASES="reasoning:1000/1000 chat:128/128", PROMPT_REQUESTS="16")
    if hf_home is not None:
        env.update(HF_HOME=str(hf_home), HF_HUB_CACHE=str(hf_home / "hub"))
    env.update(extra)
    return env


def run_setup(env: dict[str, str], *args: str, cwd: Path | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m llmb_plugin_deepseek_r1 setup --json ARGS`` as the installer would run it."""
    return subprocess.run([sys.executable, "-m", "llmb_plugin_deepseek_r1", "setup", "--json", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def statuses(doc: dict) -> dict[str, str]:
    return {s["step"]: s["status"] for s in doc["steps"]}


class FakeHub:
    """A STAND-IN for huggingface.co on 127.0.0.1, for tests only: the three kinds of request that
    ``HfApi.model_info(files_metadata=True)`` and ``snapshot_download`` make (model info, tree listing,
    ``resolve`` HEAD/GET), answered from ``files``. ``info_errors`` are HTTP statuses the first model-info
    requests get, one each (429 comes with Retry-After: 0); ``requests`` records (method, path, Authorization)
    of everything asked."""

    def __init__(self, files: dict[str, bytes], *, commit: str = COMMIT, info_errors: tuple[int, ...] = ()) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self.files, self.commit, self.info_errors = files, commit, list(info_errors)
        self.requests: list[tuple[str, str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def entry(self, name: str) -> dict:
        data = self.files[name]
        out = {"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data)}
        if is_lfs(name):
            out["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        return out

    def etag(self, name: str) -> str:
        entry = self.entry(name)
        return entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]

    def _handler(self):
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import unquote, urlsplit

        hub = self
        prefix = f"/api/models/{REPO_ID}"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, obj: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path, self.headers.get("Authorization", "")))
                if path == prefix or path.startswith(prefix + "/revision/"):
                    if hub.info_errors:
                        status = hub.info_errors.pop(0)
                        return self._json({"error": f"error {status}"}, status, {"Retry-After": "0"})
                    siblings = []
                    for name in sorted(hub.files):
                        e = hub.entry(name)
                        sib = {"rfilename": name, "size": e["size"], "blobId": e["oid"]}
                        if "lfs" in e:
                            sib["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": 130}
                        siblings.append(sib)
                    return self._json({"id": REPO_ID, "modelId": REPO_ID, "sha": hub.commit, "private": False,
                                       "siblings": siblings})
                if path.startswith(prefix + "/tree/"):
                    return self._json([hub.entry(n) for n in sorted(hub.files)])
                resolve = f"/{REPO_ID}/resolve/"
                if path.startswith(resolve):
                    _rev, _, name = path[len(resolve):].partition("/")
                    if name not in hub.files:
                        return self._json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
                    headers = {"X-Repo-Commit": hub.commit, "ETag": f'"{hub.etag(name)}"'}
                    if is_lfs(name):
                        headers.update({"X-Linked-Etag": f'"{hub.etag(name)}"',
                                        "X-Linked-Size": str(len(hub.files[name]))})
                    return self._send(200, hub.files[name], headers)
                return self._json({"error": f"no route {path}"}, 404)

        return Handler


def checkpoint_files(tmp: Path) -> dict[str, bytes]:
    """{name: content} of the tiny checkpoint make_hf_cache stores, for the fake hub to serve."""
    snapshot = make_hf_cache(tmp / "source-cache")
    return {p.name: p.read_bytes() for p in sorted(snapshot.iterdir())}
