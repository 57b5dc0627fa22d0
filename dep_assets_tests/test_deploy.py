"""The Dockerfile's command really serves the code location: start it as the image would (no Docker
engine runs here) and ask it with the image's own health check."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from dep_assets_tests.conftest import ROOT, clean_env


def _dockerfile_instruction(name: str) -> str:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return next(line.split(" ", 1)[1] for line in lines if line.startswith(name + " "))


def test_the_image_command_serves_definitions_and_passes_its_health_check(tmp_path):
    command = json.loads(_dockerfile_instruction("CMD"))
    assert command[:3] == ["dagster", "code-server", "start"] and "dep_assets.definitions" in command
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    command[command.index("-p") + 1] = port
    command[command.index("-h") + 1] = "127.0.0.1"
    env = clean_env(DAGSTER_HOME=str(tmp_path), DEP_ARCHIVE_PATH=str(tmp_path / "archive.duckdb"))
    server = subprocess.Popen(
        [sys.executable, "-m", *command], env=env, cwd=tmp_path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            check = subprocess.run(
                [sys.executable, "-m", "dagster", "api", "grpc-health-check", "-p", port, "-h", "127.0.0.1"],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if check.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert check.returncode == 0, check.stdout + check.stderr
        listed = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "list", "--grpc-port", port, "--grpc-host", "127.0.0.1"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert "Job: dep_archive_job" in listed.stdout and "Job: dep_remap_job" in listed.stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
