"""The workload's path rules, in one place: `verify`, `setup`, the dry run, the job and `results` agree on
every path because they all ask here.

    $LLMB_INSTALL/images/<image file>                 container images (the installer's file names)
    $LLMB_WORKLOAD = $LLMB_INSTALL/workloads/inference_deepseek-r1
    $LLMB_WORKLOAD/<checkpoint folder>                the checkpoint (workload.yaml checkpoints: folder), unless
                                                      MODEL_PATH names another folder
    $LLMB_WORKLOAD/dataset_<use case>_<ISL>_<OSL>.txt one dataset per use case
    $LLMB_WORKLOAD/experiments/<result name>/         logs, YAML and result documents of each run
    $LLMB_WORKLOAD/experiments/.llmb/                 job records (host.records: submitted/, jobs/, submitit/)

Every derived path stays inside $LLMB_WORKLOAD (names are validated too; the check is lexical, since a site
may symlink experiments/ to scratch storage).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, NamedTuple

from llmb_plugin_deepseek_r1.host import records
from llmb_plugin_deepseek_r1.host.errors import ValidationError
from llmb_plugin_deepseek_r1.recipe import WORKLOAD_KEY

DEFAULT_WEIGHTS_FOLDER = "DeepSeek-R1-FP4"


def image_file_name(image: str) -> str:
    """nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1 -> tensorrt-llm+release+1.0.0rc1.sqsh (the installer's name)."""
    path = image.split("#", 1)[1] if "#" in image else image
    if "/" in path.split(":")[0] and "." in path.split("/")[0]:  # registry host written with '/' instead of '#'
        path = path.split("/", 1)[1]
    parts = path.split("/")
    if len(parts) > 2:  # drop the organisation, as the installer does
        parts = parts[1:]
    return "+".join("+".join(parts).split(":")) + ".sqsh"


def image_file(install_dir: Path, image_uri: str) -> Path:
    """Where the installer puts (and jobs look for) the squashfs of ``image_uri``."""
    return install_dir / "images" / image_file_name(image_uri)


def inside(path: Path, root: Path, what: str) -> Path:
    """``path``, or a ValidationError when it would leave ``root`` ($LLMB_WORKLOAD)."""
    try:
        Path(os.path.normpath(path)).relative_to(os.path.normpath(root))
    except ValueError:
        raise ValidationError(f"{what} {path} would escape $LLMB_WORKLOAD ({root})") from None
    return path


def dataset_file(workload_dir: Path, use_case: str, isl: int, osl: int) -> Path:
    return inside(workload_dir / f"dataset_{use_case}_{isl}_{osl}.txt", workload_dir, "dataset")


def experiments_dir(workload_dir: Path) -> Path:
    return workload_dir / "experiments"


def result_dir(workload_dir: Path, result_name: str) -> Path:
    return inside(experiments_dir(workload_dir) / result_name, workload_dir, "result directory")


def model_dir(env: Mapping[str, str], workload_dir: Path, folder: str = DEFAULT_WEIGHTS_FOLDER) -> Path:
    """MODEL_PATH (an absolute path), else the checkpoint's folder inside $LLMB_WORKLOAD (the folder of the
    checkpoint the profile names: planning.profiles.checkpoint_for)."""
    value = (env.get("MODEL_PATH") or "").strip()
    if value:  # mounted into the container: absolute, no control characters, no ',' or ':'
        from llmb_plugin_deepseek_r1.host.safety import mount_path

        return Path(mount_path("MODEL_PATH", value))
    return inside(workload_dir / folder, workload_dir, "checkpoint folder")


class WorkloadPaths(NamedTuple):
    """The paths of one install, resolved once from the install folder and the environment."""

    install_dir: Path
    workload_dir: Path
    model_dir: Path

    def image_file(self, image_uri: str) -> Path:
        return image_file(self.install_dir, image_uri)

    def dataset(self, use_case: str, isl: int, osl: int) -> Path:
        return dataset_file(self.workload_dir, use_case, isl, osl)


def workload_paths(install_dir: Path, env: Mapping[str, str], *,
                   folder: str = DEFAULT_WEIGHTS_FOLDER) -> WorkloadPaths:
    """$LLMB_WORKLOAD and the model folder (MODEL_PATH honoured, else ``folder``: the checkpoint's) of the install
    at ``install_dir``."""
    workload_dir = records.workload_dir(Path(install_dir), WORKLOAD_KEY)
    return WorkloadPaths(Path(install_dir), workload_dir, model_dir(env, workload_dir, folder))
