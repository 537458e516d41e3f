"""Plugin discovery for real: the installed entry point, a toy workload made visible through a dist-info
directory on sys.path, and a broken plugin that must not take the host down."""

from __future__ import annotations

import importlib.metadata
import os
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PYTHON, REPO, python_env
from llmb_plugin_deepseek_r1.host import hookimpl
from llmb_plugin_deepseek_r1.host.contract import JobPlan, SlurmParams, Workload
from llmb_plugin_deepseek_r1.host.plugins import _iter_entry_points, load_registry

TOY_PLUGIN = textwrap.dedent('''
    """A toy workload: proves the host knows workloads only through the contract."""
    from llmb_plugin_deepseek_r1.host import hookimpl
    from llmb_plugin_deepseek_r1.host.contract import JobPlan, SlurmParams, Workload


    class Toy(Workload):
        key = "training_toy"
        metadata = {"general": {"description": "toy workload"},
                    "run": {"gpu_configs": {"gb200": {"model_configs": [
                        {"model_size": "1b", "dtypes": ["bf16"], "scales": [1, 2], "exact_scales": False}]}}}}

        def plan(self, request):
            slurm = SlurmParams(job_name="toy", nodes=1, ntasks_per_node=request.scale, time_min=5)
            return [JobPlan(name="toy", slurm=slurm, container={"runtime": "none"},
                            use_cases=[{"name": "only", "command": ["echo", "hi"]}])]


    @hookimpl
    def llmb_register_workloads(register):
        register(Toy())
''')


def make_dist(site: Path, name: str, module_source: str, entry: str) -> None:
    """Write a module and a minimal .dist-info with an llmb_run.workloads entry point."""
    (site / f"{name}.py").write_text(module_source)
    dist = site / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[llmb_run.workloads]\n{entry} = {name}\n")


def run_host(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = python_env(LLMB_INSTALL=str(tmp_path), PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    return subprocess.run([PYTHON, "-m", "llmb_plugin_deepseek_r1.host.cli", *args], env=env,
                          capture_output=True, text=True, cwd=tmp_path)


def test_installed_entry_point_is_declared():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="llmb_run.workloads")}
    assert eps.get("deepseek_r1") == "llmb_plugin_deepseek_r1.plugin"
    registry = load_registry()
    assert registry.origins["inference_deepseek-r1"] == "deepseek_r1"


def test_toy_plugin_through_dist_info_appears_in_list(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "toy_llmb_plugin", TOY_PLUGIN, "toy")
    done = run_host(site, tmp_path, "list", "--json")
    assert done.returncode == 0, done.stderr
    listed = {w["workload"]: w for w in json.loads(done.stdout)["workloads"]}
    assert set(listed) == {"inference_deepseek-r1", "training_toy"}
    assert listed["training_toy"]["plugin"] == "toy"
    done = run_host(site, tmp_path, "single", "-w", "training_toy", "-s", "1b", "--dtype", "bf16", "--scale", "2",
                    "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["jobs"][0]["use_cases"] == [{"name": "only", "command": ["echo", "hi"]}]
    done = run_host(site, tmp_path, "single", "-w", "training_toy", "-s", "1b", "--dtype", "bf16", "--scale", "0",
                    "--dry-run")
    assert done.returncode == 1 and "scale 0 must be a positive GPU count" in done.stderr


def test_broken_plugin_is_reported_not_fatal(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "broken_llmb_plugin", "raise ImportError('needs libfoo')\n", "broken")
    done = run_host(site, tmp_path, "list")
    assert done.returncode == 0
    assert "inference_deepseek-r1" in done.stdout
    assert "BROKEN plugin broken" in done.stdout and "needs libfoo" in done.stdout
    assert "warning: plugin 'broken'" in done.stderr
    done = run_host(site, tmp_path, "single", "-w", "inference_deepseek-r1", "-s", "671b", "--dtype", "nvfp4",
                    "--scale", "4", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    done = run_host(site, tmp_path, "single", "-w", "training_broken", "-s", "1b", "--dtype", "bf16",
                    "--scale", "1", "--dry-run")
    assert done.returncode == 3  # its workload cannot be told apart from a typo: a system error naming the plugin
    assert "plugins that failed to load: broken (ImportError: needs libfoo)" in done.stderr


class _FixturePlugin:
    """Registered the way simonw/llm tests register plugins: an object with hook implementations."""

    class Work(Workload):
        key = "inference_fixture"
        metadata = {"run": {"gpu_configs": {"gb200": {"model_configs": [
            {"model_size": "7b", "dtypes": ["fp8"], "scales": [4], "exact_scales": True}]}}}}

        def plan(self, request):
            return [JobPlan(name="f", slurm=SlurmParams(job_name="f", nodes=1, ntasks_per_node=4, time_min=1),
                            container={}, use_cases=[])]

    @hookimpl
    def llmb_register_workloads(self, register):
        register(self.Work())


def test_fixture_registered_plugin_and_duplicates():
    registry = load_registry([_FixturePlugin()], entry_points=False)
    assert list(registry.workloads) == ["inference_fixture"]
    with pytest.raises(Exception, match="did you mean inference_fixture"):
        registry.get("inference_fixtur")

    class Twice(_FixturePlugin):
        pass

    registry = load_registry([_FixturePlugin(), Twice()], entry_points=False)
    assert len(registry.broken) == 1 and "registered twice" in registry.broken[0].error


def test_entry_point_scan_matches_importlib_metadata(tmp_path, monkeypatch):
    """The host reads entry_points.txt itself (importlib.metadata costs a tenth of a dry run); same answer."""
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "toy_llmb_plugin", TOY_PLUGIN, "toy")
    shadow = tmp_path / "shadow"  # the same distribution later on sys.path: importlib.metadata ignores it
    shadow.mkdir()
    make_dist(shadow, "toy_llmb_plugin", TOY_PLUGIN, "toy_shadowed")
    (site / "other-1.0.dist-info").mkdir()
    (site / "other-1.0.dist-info" / "entry_points.txt").write_text(
        "# comment\n[console_scripts]\nx = y:z\n\n[llmb_run.workloads]\n other = other_mod:obj.attr [extra]\n")
    monkeypatch.setattr(sys, "path", [str(site), *sys.path, str(shadow)])
    expected = [(ep.name, ep.value) for ep in importlib.metadata.entry_points(group="llmb_run.workloads")]
    assert [(ep.name, ep.value) for ep in _iter_entry_points()] == expected
    assert ("toy", "toy_llmb_plugin") in expected and ("toy_shadowed", "toy_llmb_plugin") not in expected
    loaded = {ep.name: ep.load() for ep in _iter_entry_points() if ep.name != "other"}
    assert loaded["toy"].__name__ == "toy_llmb_plugin"
    sys.modules.pop("toy_llmb_plugin", None)


def test_an_object_that_is_not_a_workload_is_refused_by_name():
    class NotAWorkload:
        key = "inference_plain"

        def plan(self, request):
            return []

    class Plugin:
        @hookimpl
        def llmb_register_workloads(self, register):
            register(NotAWorkload())

    registry = load_registry([Plugin()], entry_points=False)
    assert registry.workloads == {} and "does not derive from" in registry.broken[0].error



def test_a_plugin_adds_its_own_command():
    """llmb_register_commands: a plugin's subcommand is parsed and dispatched like the host's own."""
    from llmb_plugin_deepseek_r1.host.cli import build_parser

    class CommandPlugin(_FixturePlugin):
        @hookimpl
        def llmb_register_commands(self, subparsers):
            parser = subparsers.add_parser("hello", help="say hello")
            parser.add_argument("--to", default="world")
            parser.set_defaults(handler=lambda args: 7 if args.to == "you" else 0)

    parser = build_parser(load_registry([CommandPlugin()], entry_points=False))
    args = parser.parse_args(["hello", "--to", "you"])
    assert args.handler(args) == 7


def test_a_workload_without_plan_or_key_is_refused_by_name():
    class NoPlan(Workload):
        key = "inference_noplan"
        metadata = {}

    class NoKey(Workload):
        metadata = {}

        def plan(self, request):
            return []

    def plugin_of(workload_class):
        class Plugin:
            @hookimpl
            def llmb_register_workloads(self, register):
                register(workload_class())
        return Plugin()

    registry = load_registry([plugin_of(NoPlan), plugin_of(NoKey)], entry_points=False)
    assert registry.workloads == {}
    assert ["does not implement plan" in b.error for b in registry.broken] == [True, False]
    assert "without a key" in registry.broken[1].error
