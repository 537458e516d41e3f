"""cluster_config.yaml in NVIDIA llmb-run's schema 1 (launcher section) and 2 (flat keys, slurm.gpu/cpu blocks),
strict types with one-line errors, and NVIDIA's precedence: --env > cluster configuration > shell."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmb_plugin_deepseek_r1.host.cluster import check_installed, parse_cluster_config, resolve_context
from llmb_plugin_deepseek_r1.host.errors import ConfigError

SCHEMA_2 = {
    "schema_version": 2, "llmb_repo": "/repo", "llmb_install": "/site/llmb", "gpu_type": "GB200",
    "cluster_name": "c1", "install": {"node_architecture": "aarch64"},
    "environment": {"HF_TOKEN": "hf_x", "STREAMING": False},
    "slurm": {"account": "acct", "qos": "high", "gpu": {"partition": "gpu", "gres": 4},
              "cpu": {"partition": "cpu", "gres": None}},
    "workloads": {"installed": ["inference_deepseek-r1"],
                  "config": {"inference_deepseek-r1": {"venv_path": "/venvs/v1", "venv_type": "uv",
                                                       "environment": {"NCCL_DEBUG": "INFO"}}}},
}


def write(tmp_path: Path, data, name: str = "cluster_config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_schema_2_is_read(tmp_path):
    config = parse_cluster_config(write(tmp_path, SCHEMA_2))
    assert (config.schema_version, config.llmb_repo, config.llmb_install, config.gpu_type) == (
        2, "/repo", "/site/llmb", "GB200")
    assert (config.cluster_name, config.node_architecture) == ("c1", "aarch64")
    assert config.slurm_gpu == {"SBATCH_ACCOUNT": "acct", "SBATCH_QOS": "high", "SBATCH_PARTITION": "gpu",
                                "SBATCH_GPUS_PER_NODE": "4"}
    assert config.slurm_cpu == {"SBATCH_ACCOUNT": "acct", "SBATCH_QOS": "high", "SBATCH_PARTITION": "cpu"}
    assert config.environment == {"HF_TOKEN": "hf_x", "STREAMING": "false"}
    assert config.installed == ("inference_deepseek-r1",)
    settings = config.workload("inference_deepseek-r1")
    assert (settings.venv_path, settings.venv_type, dict(settings.environment)) == ("/venvs/v1", "uv",
                                                                                   {"NCCL_DEBUG": "INFO"})


def test_schema_1_is_read(tmp_path):
    config = parse_cluster_config(write(tmp_path, {
        "launcher": {"llmb_repo": "/repo", "llmb_install": "/site", "gpu_type": "b200"},
        "slurm": {"account": "a", "gpu_partition": "g", "gpu_gres": 8, "cpu_partition": "c"}}))
    assert (config.schema_version, config.gpu_type, config.llmb_install) == (1, "b200", "/site")
    assert (config.account, config.gpu_partition, config.gpu_gres, config.cpu_partition) == ("a", "g", 8, "c")
    assert config.installed is None  # no list: nothing enforced


@pytest.mark.parametrize("data, fragment", [
    ({"schema_version": 3}, "schema_version 3 is not supported: expected 1 (launcher section) or 2"),
    ({"schema_version": "2"}, "schema_version '2' is not supported"),
    ({"schema_version": 2, "launcher": {"gpu_type": "gb200"}}, "a 'launcher' section is not allowed"),
    ({"gpu_type": "gb200"}, "top-level 'gpu_type' needs schema_version: 2"),
    ({"slurm": {"gpu_partition": "g", "gpu": {"partition": "g"}}}, "slurm.gpu_partition cannot be mixed with"),
    ({"slurm": {"gpu_gres": 2.7}}, "slurm.gpu_gres must be a positive whole number of GPUs per node (or null), "
                                   "got number 2.7"),
    ({"slurm": {"gpu_gres": True}}, "slurm.gpu_gres must be a positive whole number of GPUs per node (or null), "
                                    "got boolean True"),
    ({"schema_version": 2, "slurm": {"gpu": {"gres": "four"}}}, "slurm.gpu.gres must be a positive whole number"),
    ({"environment": {"A": {"nested": 1}}}, "environment.A must be a string, number or boolean, got mapping"),
    ({"environment": ["A=1"]}, "environment must be a mapping, got list"),
    ({"environment": {"BAD-NAME": "1"}}, "must be an environment variable name"),
    ({"workloads": {"installed": 5}}, "workloads.installed must be a list of workload keys, got integer 5"),
    ({"workloads": {"config": {"w": {"venv_path": ["/a"]}}}}, "workloads.config.w.venv_path must be a string"),
    ({"slurm": {"account": {"a": 1}}}, "slurm.account must be a string or number"),
])
def test_wrong_types_are_one_line_errors_naming_file_key_and_type(tmp_path, data, fragment):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        parse_cluster_config(path)
    message = str(error.value)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message, message


def test_non_utf8_bytes_name_file_line_and_key(tmp_path):
    path = tmp_path / "cluster_config.yaml"
    path.write_bytes(b"launcher:\n  gpu_type: gb200\nenvironment:\n  NOTE: caf\xe9\n")
    with pytest.raises(ConfigError) as error:
        parse_cluster_config(path)
    assert str(error.value) == (f"{path}: line 4, key 'NOTE': byte 0xe9 is not UTF-8; expected UTF-8 text")


def test_precedence_command_line_over_cluster_over_shell(tmp_path):
    write(tmp_path, SCHEMA_2)
    shell = {"SBATCH_PARTITION": "shell", "SBATCH_ACCOUNT": "shell_acct", "NCCL_DEBUG": "WARN", "HF_TOKEN": "shell",
             "LLMB_INSTALL": "/shell/install", "GPU_TYPE": "h100", "ONLY_SHELL": "1"}
    context = resolve_context(shell, tmp_path, {"SBATCH_ACCOUNT": "cli_acct"}, workload="inference_deepseek-r1")
    env, sources = context.env, context.sources
    assert (env["SBATCH_PARTITION"], sources["SBATCH_PARTITION"]) == ("gpu", "cluster_config.yaml slurm")
    assert (env["SBATCH_ACCOUNT"], sources["SBATCH_ACCOUNT"]) == ("cli_acct", "--env")
    assert (env["HF_TOKEN"], sources["HF_TOKEN"]) == ("hf_x", "cluster_config.yaml environment")
    assert (env["NCCL_DEBUG"], sources["NCCL_DEBUG"]) == (
        "INFO", "cluster_config.yaml workloads.config.inference_deepseek-r1.environment")
    assert env["ONLY_SHELL"] == "1" and "ONLY_SHELL" not in sources
    assert context.install_dir == Path("/site/llmb") and sources["LLMB_INSTALL"] == "cluster_config.yaml llmb_install"
    assert (context.gpu_type, context.gpu_type_source) == ("gb200", "cluster_config.yaml gpu_type")


def test_cpu_target_falls_back_to_gpu_and_null_unsets(tmp_path):
    config = parse_cluster_config(write(tmp_path, {"schema_version": 2, "slurm": {"gpu": {"partition": "g",
                                                                                           "gres": 4}}}))
    assert config.slurm_cpu == config.slurm_gpu == {"SBATCH_PARTITION": "g", "SBATCH_GPUS_PER_NODE": "4"}


def test_installed_list_is_enforced_unless_forced(tmp_path):
    config = parse_cluster_config(write(tmp_path, {"workloads": {"installed": ["pretrain_x"]}}))
    with pytest.raises(ConfigError, match="workload 'inference_deepseek-r1' is not installed on this cluster"):
        check_installed(config, "inference_deepseek-r1", force=False)
    check_installed(config, "inference_deepseek-r1", force=True)
    check_installed(parse_cluster_config(write(tmp_path, {"slurm": {}})), "inference_deepseek-r1", force=False)
