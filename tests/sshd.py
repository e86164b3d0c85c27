"""A real OpenSSH server for the remote-target tests: started on a free loopback port with keys
generated for the test, and an ssh_config whose host aliases all reach it. Nothing of the
system's configuration is read or changed (~/.ssh and /etc/ssh are never touched)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
HOSTS = tuple(f"host{n}" for n in range(1, 11))


@dataclass(frozen=True)
class Sshd:
    """A running test sshd: its port, the ssh_config reaching it, and its directory."""

    port: int
    config: Path
    directory: Path

    def ssh(self, host: str, command: str) -> subprocess.CompletedProcess[str]:
        """One plain `ssh -F CONFIG HOST COMMAND` (for checks made beside the engine)."""
        return subprocess.run(
            ["ssh", "-F", str(self.config), host, command],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return Path(f"{path}.pub").read_text().strip()


def start_sshd(directory: Path, count: int = 10) -> tuple[Sshd, subprocess.Popen[bytes]]:
    """Keys, configs and the server itself, all in `directory`; `count` host aliases
    (host1, host2, ...) reach it."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    host_key = directory / "host_key"
    user_key = directory / "user_key"
    other_key = directory / "other_host_key"
    host_public = _keygen(host_key)
    user_public = _keygen(user_key)
    other_public = _keygen(other_key)
    (directory / "authorized_keys").write_text(user_public + "\n")
    port = free_port()
    closed = free_port()  # nothing listens there: a host that refuses the connection
    sshd_config = directory / "sshd_config"
    sshd_config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPidFile {directory / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "PrintMotd no\nPrintLastLog no\nMaxSessions 100\nMaxStartups 100\n"
        "AcceptEnv LANG\nSubsystem sftp internal-sftp\n"
        # Debian's bash reads ~/.bashrc for every command sshd starts (its SSH_SOURCE_BASHRC)
        # unless SHLVL says it is nested: the test hosts do not run the machine user's rc
        # files (a pyenv init there costs 0.2 s of CPU per session, on the tests' own cores).
        "SetEnv SHLVL=1\n"
    )
    key_type, key_data = host_public.split()[:2]
    other_type, other_data = other_public.split()[:2]
    known = directory / "known_hosts"
    known.write_text(
        f"[127.0.0.1]:{port} {key_type} {key_data}\nchanged-key {other_type} {other_data}\n"
    )
    common = (
        f"  HostName 127.0.0.1\n  User {os.environ.get('USER') or _user()}\n"
        f"  IdentityFile {user_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n"
        "  CheckHostIP no\n  LogLevel ERROR\n"
    )
    names = " ".join(f"host{n}" for n in range(1, count + 1))
    blocks = [f"Host {names}\n  Port {port}\n{common}"]
    blocks.append(f"Host refused\n  Port {closed}\n  ConnectTimeout 5\n{common}")
    blocks.append(f"Host changed\n  Port {port}\n  HostKeyAlias changed-key\n{common}")
    config = directory / "ssh_config"
    config.write_text("\n".join(blocks))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation (root)
    log = open(directory / "sshd.log", "wb")  # noqa: SIM115 (open for the server's life)
    process = subprocess.Popen(
        [SSHD, "-D", "-f", str(sshd_config), "-e"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    server = Sshd(port, config, directory)
    until = time.monotonic() + 20
    while time.monotonic() < until:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("sshd did not start: " + (directory / "sshd.log").read_text())


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture(scope="module", name="sshd")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A test sshd for a module's tests (skipped where OpenSSH's server is not installed)."""
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        pytest.skip("OpenSSH's server is not installed (make test installs it)")
    directory = Path(tempfile_dir(tmp_path_factory))
    server, process = start_sshd(directory)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def tempfile_dir(factory: pytest.TempPathFactory) -> Path:
    """A short directory: unix socket paths (ssh's ControlPath) are limited to ~100 bytes."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="rb-sshd-"))
