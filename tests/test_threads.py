"""Thread pools sized to the machine (archdsl/threads.py): the cores this process may use,
the idle ones among them by default, `--threads N` and `OMP_NUM_THREADS` when given, and
pools that really take the size, whether they load after `configure` or before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl import threads

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*threads.POOL_VARIABLES, *threads.TF_VARIABLES):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads, "_resize_loaded_pools", lambda n: None)


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert threads.quota(tmp_path) == expected


@pytest.mark.parametrize(("cpus", "limit", "expected"), [
    ([0, 1, 2, 3], None, 4), ([0, 1, 2, 3], 1.5, 2), ([2], 8.0, 1), ([0, 1], 0.5, 1)])
def test_cores_are_the_affinity_capped_by_the_quota(monkeypatch, cpus, limit, expected):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: cpus)
    monkeypatch.setattr(threads, "quota", lambda: limit)
    assert threads.cores() == expected


def test_idle_time_is_read_per_allowed_cpu(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 9 9 9 0 0\n"
                    "cpu0 10 0 10 70 10 0 0 0 0 0\n"
                    "cpu1 50 0 40 10 0 0 0 0 0 0\n"
                    "intr 1 2 3\n")
    assert threads.cpu_times([0, 1], stat) == {0: (80, 100), 1: (10, 100)}
    assert threads.cpu_times([0, 2], stat) is None  # a CPU the kernel does not list
    idle = threads.idle_cores(threads.allowed_cpus(), interval=0.05)  # this machine, now
    assert idle is not None and 0 <= idle <= len(threads.allowed_cpus())


@pytest.mark.parametrize(("idle", "expected"), [(0.0, 1), (0.4, 1), (1.6, 2), (3.9, 2)])
def test_default_is_the_idle_cores_at_least_one(monkeypatch, idle, expected):
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "idle_cores", lambda cpus: idle)
    n, why = threads.default_threads()
    assert n == expected and why == f"{idle:.1f} of 2 cores idle"


def test_threads_option_sizes_every_pool(clean_env):
    os.environ["OMP_NUM_THREADS"] = "7"  # --threads wins over the environment
    assert threads.configure(3) == (3, "--threads")
    assert {os.environ[v] for v in threads.POOL_VARIABLES} == {"3"}
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "3"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == "1"


def test_the_default_leaves_tensorflow_its_own_pools(clean_env, monkeypatch):
    monkeypatch.setattr(threads, "default_threads", lambda: (1, "0.2 of 2 cores idle"))
    assert threads.configure() == (1, "0.2 of 2 cores idle")
    assert {os.environ[v] for v in threads.POOL_VARIABLES} == {"1"}
    assert not set(threads.TF_VARIABLES) & set(os.environ)


def test_the_users_omp_num_threads_is_kept_and_fills_the_other_pools(clean_env):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "5"
    assert threads.configure() == (1, "OMP_NUM_THREADS")
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "5"  # what the user set stays


PROBE = """
import sys
from archdsl.threads import configure
if sys.argv[1] == "before":  # NumPy and torch already loaded: resized in place
    import numpy, torch
configure(1)
import numpy, torch
from threadpoolctl import threadpool_info
print(torch.get_num_threads(), sorted({p["num_threads"] for p in threadpool_info()}))
"""


@pytest.mark.parametrize("when", ["after", "before"])
def test_pools_take_the_size_whether_they_load_after_or_before(when):
    env = {k: v for k, v in os.environ.items()
           if k not in (*threads.POOL_VARIABLES, *threads.TF_VARIABLES)}
    done = subprocess.run([sys.executable, "-c", PROBE, when], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.split("\n")[0] == "1 [1]", done.stdout + done.stderr


def test_train_reports_the_threads_it_uses(tmp_path):
    import numpy as np
    x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, target=(x[:, 0] > 0).astype(np.int64))
    spec = tmp_path / "t.arch"
    spec.write_text("model T { input x: [B, 6]\n output y: [B, 2] = x |> Linear(2) }")
    done = subprocess.run([sys.executable, "-m", "archdsl.cli", "train", str(spec), "--data",
                           str(tmp_path / "d.npz"), "--epochs", "1", "--backend", "numpy",
                           "--threads", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "threads: 1 per pool (--threads)" in done.stderr
