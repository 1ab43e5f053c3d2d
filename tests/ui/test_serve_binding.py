"""Issue 15: without sign-in, the server `make run` starts listens on 127.0.0.1 only; another
address needs the explicit setting and prints a warning. The real server is started as `make run`
does (`python -m ui.serve`, no address given) and its listening sockets are read from /proc."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit import config

from benchmarks.app_bench import REPO, free_port
from foundation.errors import WorkbenchError
from ui import serve

ENV = {}


def test_no_address_and_no_sign_in_means_loopback_only():
    args, warning = serve.binding_arguments(["--server.port", "8501"], signed_in=False, env=ENV, configured=None)
    assert args == ["--server.port", "8501", "--server.address", "127.0.0.1"] and warning is None


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_loopback_address_is_kept(address):
    args, warning = serve.binding_arguments(["--server.address", address], signed_in=False, env=ENV, configured=None)
    assert args == ["--server.address", address] and warning is None


@pytest.mark.parametrize("where", ["flag", "flag=", "env", "config"])
def test_another_address_without_sign_in_is_refused_wherever_it_is_set(where):
    argv = {"flag": ["--server.address", "0.0.0.0"], "flag=": ["--server.address=0.0.0.0"]}.get(where, [])
    env = {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"} if where == "env" else {}
    configured = "0.0.0.0" if where == "config" else None
    with pytest.raises(WorkbenchError, match="Refusing to listen on 0.0.0.0 without sign-in"):
        serve.binding_arguments(argv, signed_in=False, env=env, configured=configured)


def test_the_explicit_setting_allows_it_with_a_warning():
    args, warning = serve.binding_arguments(["--server.address", "0.0.0.0"], signed_in=False,
                                            env={serve.ALLOW_NETWORK_ENV: "1"}, configured=None)
    assert args == ["--server.address", "0.0.0.0"]
    assert "listening on 0.0.0.0 without sign-in" in warning


def test_with_sign_in_the_address_is_left_to_streamlit():
    assert serve.binding_arguments(["--server.port", "1"], signed_in=True, env=ENV, configured=None) == (
        ["--server.port", "1"], None)


def test_secrets_files_given_on_the_command_line_replace_the_configured_ones():
    assert serve.secrets_files(["--secrets.files", "/a.toml", "--secrets.files=/b.toml"], ["/c"]) == ["/a.toml", "/b.toml"]
    assert serve.secrets_files(["--server.port", "1"], ["/c"]) == ["/c"]


def test_auth_configured_reads_the_auth_section(tmp_path):
    plain, signed = tmp_path / "plain.toml", tmp_path / "signed.toml"
    plain.write_text('api_key = "x"\n')
    signed.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\ncookie_secret = "s"\n')
    assert not serve.auth_configured([plain, tmp_path / "missing.toml"])
    assert serve.auth_configured([plain, signed])


# -- the real server ------------------------------------------------------------------------------

def _listening(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            host, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(host)
            # /proc stores each 32-bit word in host (little-endian) order
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(words)
            if address.version == 6 and address.ipv4_mapped:
                address = address.ipv4_mapped
            found.add(str(address))
    return found


def _start(tmp_path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    environment = {key: value for key, value in os.environ.items()
                   if key not in (serve.ALLOW_NETWORK_ENV, "STREAMLIT_SERVER_ADDRESS")}
    environment.update(WORKBENCH_HOME=str(tmp_path / "ws"), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
                       **(env or {}))
    command = [sys.executable, "-m", "ui.serve", "--server.port", str(port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process, port, log


def _wait_healthy(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(log.read_text())


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)


@pytest.fixture
def no_sign_in_configured():
    if serve.auth_configured(config.get_option("secrets.files")):
        pytest.skip("an [auth] section is configured on this machine: the server would bind as configured")


@pytest.mark.slow
def test_make_run_listens_on_loopback_only(tmp_path, no_sign_in_configured):
    process, port, log = _start(tmp_path)
    try:
        _wait_healthy(process, port, log)
        assert _listening(port) == {"127.0.0.1"}, log.read_text()
    finally:
        _stop(process)


def test_the_server_refuses_another_address_without_the_setting(tmp_path, no_sign_in_configured):
    process, port, log = _start(tmp_path, "--server.address", "0.0.0.0")
    assert process.wait(timeout=60) != 0
    assert "Refusing to listen on 0.0.0.0 without sign-in" in log.read_text()
    assert _listening(port) == set()


@pytest.mark.slow
def test_with_the_setting_it_listens_everywhere_and_warns(tmp_path, no_sign_in_configured):
    process, port, log = _start(tmp_path, "--server.address", "0.0.0.0", env={serve.ALLOW_NETWORK_ENV: "1"})
    try:
        _wait_healthy(process, port, log)
        assert _listening(port) == {"0.0.0.0"}
        assert "listening on 0.0.0.0 without sign-in" in log.read_text()
    finally:
        _stop(process)
