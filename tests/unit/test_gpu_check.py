"""`make gpu-check`'s driver (tests/gpu_check.py): the summary it writes from what the steps left behind."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("gpu_check", REPO / "tests" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)

BENCH = {"status": "ok", "meta": {"backend": "gpu", "device_kind": "NVIDIA H200"},
         "targets": {"large_step_vs_bandwidth_limit_float32": {"value": 0.92, "target": 0.9, "met": True},
                     "large_step_vs_irreducible_limit_float64": {"value": 0.75, "target": 0.9, "met": False,
                                                                 "why": "XLA makes the step 2 kernels"},
                     "large_step_vs_irreducible_limit_float32": {
                         "value": None, "target": 0.9, "met": None, "fraction_measured": 1.7,
                         "reason": "launch-bound: the shortest call compared (20 us) takes 2 empty calls"},
                     "small_library_vs_numpy_per_step": {"value": 40.0, "target": 30.0, "met": True}},
         "sizes": {"small": {"launch": {"time": 12e-6, "empty_call_time": 9e-6, "empty_calls": 12 / 9,
                                        "launch_bound": True}},
                   "large": {"skipped": {"numpy_loop": "numpy_loop: 11 calls predicted up to 300 s"}}},
         "backend": {"platform": "gpu", "preset": "gpu (presets.gpu)", "large_n_per_class": 200000000,
                     "large_reduced": None}}


def test_a_cpu_machine_claims_no_gpu_target():
    for bench in (None, BENCH):
        out = gpu_check.gpu_targets(bench, "cpu")
        assert out == {"measured": False, "reason": gpu_check.NO_GPU, "targets": {}}
    text = gpu_check.summary_markdown({"device": {"platform": "cpu", "device_kind": "cpu"},
                                       "gpu_targets": gpu_check.gpu_targets(BENCH, "cpu")})
    assert "no GPU: GPU targets not measured" in text and "| GPU target" not in text
    assert "nvidia-smi" not in text  # no GPU on the machine: nothing to install
    hint = gpu_check.summary_markdown({"python": "p", "nvidia_smi": True, "device": {"platform": "cpu"}})
    assert "an NVIDIA GPU is present (nvidia-smi) but JAX in p does not use it: install the cuda12 or cuda13" in hint


def test_on_a_gpu_each_target_is_met_or_missed_with_its_numbers_and_why():
    out = gpu_check.gpu_targets(BENCH, "gpu")
    assert out["measured"] and set(out["targets"]) == {"large_step_vs_bandwidth_limit_float32",
                                                       "large_step_vs_irreducible_limit_float64",
                                                       "large_step_vs_irreducible_limit_float32"}
    text = gpu_check.summary_markdown({"device": {"platform": "gpu", "device_kind": "NVIDIA H200", "device_count": 1,
                                                  "memory_bytes": 139 * 2**30, "jax": "0.11.2"},
                                       "gpu_targets": out})
    assert "| large_step_vs_irreducible_limit_float64 | 0.75 | 0.9 | MISSED | XLA makes the step 2 kernels |" in text
    assert "| large_step_vs_bandwidth_limit_float32 | 0.92 | 0.9 | met |  |" in text
    assert ("| large_step_vs_irreducible_limit_float32 | - | 0.9 | not judged | launch-bound: the shortest call "
            "compared (20 us) takes 2 empty calls |") in text
    assert "over the 360 s goal" not in text
    assert "- benchmark: preset gpu (presets.gpu), large set 200,000,000 points per class\n" in text
    assert "  - numpy_loop skipped: numpy_loop: 11 calls predicted up to 300 s" in text
    assert "over the 360 s goal" in gpu_check.summary_markdown({"seconds": 400.0})
    assert "139 GiB" in text and "small problem: launch-bound: 12 us a step = 1.33 empty calls of 9 us" in text
    assert not gpu_check.gpu_targets({**BENCH, "status": "failed"}, "gpu")["measured"]
    # a benchmark that ran on the CPU of a GPU machine (backend=cpu) claims no GPU target either
    assert not gpu_check.gpu_targets({**BENCH, "meta": {"backend": "cpu"}}, "gpu")["measured"]


def test_junit_counts_and_the_main_job_record(tmp_path):
    (tmp_path / "j.xml").write_text(
        '<testsuites><testsuite><testcase classname="a" name="ok"/><testcase classname="a" name="bad">'
        '<failure/></testcase><testcase classname="b" name="err"><error/></testcase>'
        '<testcase classname="b" name="skip"><skipped/></testcase></testsuite></testsuites>')
    assert gpu_check.junit_counts(tmp_path / "j.xml") == {"passed": 1, "failed": 2, "skipped": 1,
                                                          "failed_tests": ["a::bad", "b::err"]}
    assert gpu_check.junit_counts(tmp_path / "none.xml")["note"] == "no JUnit report written"
    (tmp_path / "metrics.json").write_text(json.dumps({"status": "failed", "claims": {"claims": 40, "passed": 33},
                                                       "runs": {"x": {"status": "ok"}, "y": {"status": "failed"}}}))
    job = gpu_check.main_job_summary(tmp_path)
    assert job["claims"]["passed"] == 33 and job["runs"] == {"x": "ok", "y": "failed"}
    text = gpu_check.summary_markdown({"run_all": job})
    assert "claims verified 33/40" in text and "y: failed" in text and "x: ok" not in text


def test_a_failed_step_says_why_in_one_line(tmp_path):
    result = gpu_check.run([gpu_check.sys.executable, "-c", "import sys; print('working', flush=True); "
                            "sys.exit('ModuleNotFoundError: No module named hydra')"], {}, 60, tmp_path / "s.log")
    assert result["exit_code"] == 1 and result["last_line"] == "ModuleNotFoundError: No module named hydra"
    text = gpu_check.summary_markdown({"python": "python3", "device": {"hydra": False, "pytest": True},
                                       "run_all": {**result, "status": "no record", "runs": {}}})
    assert "not importable by python3: hydra" in text and "exit 1: ModuleNotFoundError: No module named hydra" in text
    assert "last_line" not in gpu_check.run([gpu_check.sys.executable, "-c", "pass"], {}, 60, tmp_path / "t.log")


@pytest.mark.slow
@pytest.mark.skipif(not gpu_check.sys.platform.startswith("linux"), reason="reads /proc")
def test_a_step_past_its_deadline_is_stopped_with_what_it_started(tmp_path):
    # the step starts a grandchild and both sleep: the deadline's SIGTERM reaches the whole process group
    script = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
              "time.sleep(60)']); print(p.pid, flush=True); time.sleep(60)")
    result = gpu_check.run([gpu_check.sys.executable, "-c", script], {}, 2, tmp_path / "s.log")
    assert result["timed_out"] and result["exit_code"] is None and result["last_line"] == "timed out after 2 s"
    grandchild = int((tmp_path / "s.log").read_text().split()[0])
    deadline = gpu_check.time.monotonic() + 10
    while gpu_check.time.monotonic() < deadline and _alive(grandchild):
        gpu_check.time.sleep(0.1)
    assert not _alive(grandchild) and result["seconds"] < 30


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_the_project_interpreter_is_the_venv_else_this_python_with_src_on_the_path(tmp_path):
    python, env = gpu_check.interpreter(tmp_path)
    assert python == [gpu_check.sys.executable] and env["PYTHONPATH"].split(":")[0] == str(tmp_path / "src")
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    python, env = gpu_check.interpreter(tmp_path)
    assert python == [str(tmp_path / ".venv" / "bin" / "python")]


def test_an_unknown_step_is_refused_in_one_line(capsys):
    assert gpu_check.main(["--steps", "tests,bench"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps=tests,bench" in err and "device, tests, run_all" in err


@pytest.mark.slow
def test_the_device_step_alone_writes_the_summary(tmp_path):
    assert gpu_check.main(["--steps", "device", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["device"]["platform"] in {"cpu", "gpu", "tpu"}
    assert (tmp_path / "summary.md").read_text().startswith("# gpu-check")
