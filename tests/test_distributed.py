"""Beyond one machine: the transformers + PEFT backend under `accelerate launch`, two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.conftest import small_run_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_train_through_accelerate_launch(tmp_path):
    from brandkit.pipeline import Run

    run = Run(small_run_config(tmp_path / "run"), log=lambda _: None, progress=False)
    run.collect()
    run.clean()
    examples = run.examples()
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),
               "-m", "brandkit.cli", "train", "--out", str(run.dir), "--max-steps", "3", "--quiet"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("adapter:") == 1  # only the main process reports (and writes)
    state = json.loads((run.path("train", "checkpoints", "checkpoint-3", "trainer_state.json")).read_text())
    batch = state["train_batch_size"]  # per process, from the CPU preset
    # two processes each take a batch per step: the epoch count shows twice the examples seen
    assert state["global_step"] == 3
    assert abs(state["epoch"] - 3 * batch * 2 / len(examples["train"])) < 0.05
    assert (run.path("train", "adapter", "adapter_model.safetensors")).exists()
