"""A single-node SLURM cluster on loopback, started and stopped by the test that needs it.

It runs what a site runs: munged, MariaDB, slurmdbd (job accounting), slurmctld and slurmd,
each in the foreground as a child of this process, with every state, log, socket and key file
under one temporary directory. Nothing listens on anything but 127.0.0.1.

One path leaves that directory: /etc/slurm/slurm.conf, the compiled-in default, becomes a link
to the test's slurm.conf for as long as the cluster runs. The slurm-jobstep executor strips
SLURM_* variables (SLURM_CONF included) before the srun it runs inside each job, so a cluster
whose slurm.conf is only reachable through SLURM_CONF cannot run Snakemake jobs; sites keep it
at the default path, and so does this cluster. A real slurm.conf found there is never touched.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).parent
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
#: Marks a state directory (and so a link at SYSTEM_CONF) as this module's.
STATE_PREFIX = "affect4k-slurm-"
REQUIRED_PROGRAMS = (
    "munged",
    "mungekey",
    "mariadb-install-db",
    "mariadbd",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sacctmgr",
    "sbatch",
    "srun",
    "sacct",
    "scontrol",
    "sinfo",
)
START_TIMEOUT_S = 90


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started on this machine, or None when it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "starting slurmd/slurmctld/MariaDB needs root (run .ci/install-slurm, then as root)"
    missing = [program for program in REQUIRED_PROGRAMS if shutil.which(program) is None]
    if missing:
        return f"SLURM packages missing ({', '.join(missing)}): run .ci/install-slurm"
    if (SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink()) and not _is_ours(SYSTEM_CONF):
        return f"{SYSTEM_CONF} belongs to a real SLURM installation; not replacing it"
    return None


def _is_ours(path: Path) -> bool:
    return path.is_symlink() and STATE_PREFIX in os.readlink(path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_size() -> tuple[int, int]:
    """CPUs and memory (MB) as slurmd itself measures them, so the node is never drained."""
    report = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    cpus = int(re.search(r"\bCPUs=(\d+)", report).group(1))
    memory_mb = int(re.search(r"\bRealMemory=(\d+)", report).group(1))
    return cpus, memory_mb


class LoopbackSlurm:
    """The cluster; ``start()`` returns once a job can be submitted, ``stop()`` always cleans up."""

    cluster = "affect4k-test"
    partition = "main"
    account = "affect4k"
    gpu_model = "testgpu"

    def __init__(self, state: Path) -> None:
        if STATE_PREFIX not in state.name:
            raise ValueError(f"state directory name must contain {STATE_PREFIX!r}: {state}")
        self.state = state
        self.cpus, self.memory_mb = _node_size()
        self._daemons: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._linked = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        for name in ("munge", "mysql", "ctld", "slurmd", "log"):
            (self.state / name).mkdir(parents=True, exist_ok=True)
            (self.state / name).chmod(0o700)
        self._write_configs()
        self._link_system_conf()
        self._start_munge()
        self._start_mariadb()
        self._start_slurmdbd()
        self._start_slurmctld()
        self._start_slurmd()

    def stop(self) -> None:
        """Cancel leftover jobs, stop the daemons newest first, drop the /etc link."""
        try:
            if any(name == "slurmctld" for name, _ in self._daemons):
                subprocess.run(["scancel", "--user", "root"], capture_output=True, check=False)
                self._wait_until(lambda: not self.squeue(), "cancelled jobs to end", 30, None)
        finally:
            for _, process in reversed(self._daemons):
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            self._daemons.clear()
            if self._linked and _is_ours(SYSTEM_CONF):
                SYSTEM_CONF.unlink()
            self._linked = False

    # -- queries used by tests --------------------------------------------------------------

    def sacct(self, job_name: str) -> list[dict[str, str]]:
        """Accounting records (allocations only) of every job named ``job_name``."""
        fields = [
            "JobID",
            "JobName",
            "State",
            "Account",
            "Partition",
            "Comment",
            "ReqTRES",
            "AllocTRES",
        ]
        result = subprocess.run(
            [
                "sacct",
                "-X",
                "--parsable2",
                "--noheader",
                "--allusers",
                "--starttime",
                "now-1days",
                "--name",
                job_name,
                "--format",
                ",".join(fields),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return [
            dict(zip(fields, line.split("|"), strict=True))
            for line in result.stdout.splitlines()
            if line
        ]

    def squeue(self) -> list[str]:
        result = subprocess.run(
            ["squeue", "--noheader", "--format", "%i"], capture_output=True, text=True, check=False
        )
        return result.stdout.split()

    # -- steps ------------------------------------------------------------------------------

    def _write_configs(self) -> None:
        values = {
            "cluster": self.cluster,
            "partition": self.partition,
            "gpu_model": self.gpu_model,
            "state": str(self.state),
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "ctld_port": _free_port(),
            "slurmd_port": _free_port(),
            "dbd_port": _free_port(),
            "mysql_port": _free_port(),
            "db_password": secrets.token_hex(16),
        }
        self.mysql_port = values["mysql_port"]
        self.db_password = values["db_password"]
        for name in ("slurm.conf", "slurmdbd.conf", "gres.conf"):
            text = Template((TEMPLATES / f"{name}.in").read_text()).substitute(values)
            path = self.state / name
            path.write_text(text)
            # slurmdbd refuses a config others can read (it holds the database password).
            path.chmod(0o600 if name == "slurmdbd.conf" else 0o644)
        self.conf = self.state / "slurm.conf"

    def _link_system_conf(self) -> None:
        if _is_ours(SYSTEM_CONF):  # left behind by a run that was killed
            SYSTEM_CONF.unlink()
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self._linked = True

    def _daemon_env(self) -> dict[str, str]:
        # Daemons find slurmdbd.conf and gres.conf next to the slurm.conf SLURM_CONF names.
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        output = (self.state / "log" / f"{name}.out").open("wb")
        process = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=self._daemon_env(),
            start_new_session=True,
        )
        output.close()
        self._daemons.append((name, process))
        return process

    def _run(self, argv: list[str]) -> str:
        result = subprocess.run(
            argv, capture_output=True, text=True, env=self._daemon_env(), check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def _wait_until(
        self, ready: Callable[[], bool], what: str, timeout_s: float, log: str | None
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            for name, process in self._daemons:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited ({process.returncode}) while waiting for "
                        f"{what}:\n{self._tail(name)}"
                    )
            time.sleep(0.5)
        raise RuntimeError(
            f"timed out after {timeout_s} s waiting for {what}:\n{self._tail(log) if log else ''}"
        )

    def _tail(self, name: str) -> str:
        text = ""
        for path in (self.state / "log" / f"{name}.out", self.state / "log" / f"{name}.log"):
            if path.exists():
                text += f"--- {path}\n" + "\n".join(path.read_text().splitlines()[-30:]) + "\n"
        return text

    def _start_munge(self) -> None:
        key = self.state / "munge" / "munge.key"
        self._run(["mungekey", "--create", "--keyfile", str(key)])
        key.chmod(0o600)
        socket_path = self.state / "munge" / "munge.socket.2"
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                "--num-threads=10",
                f"--key-file={key}",
                f"--socket={socket_path}",
                f"--pid-file={self.state / 'munge' / 'munged.pid'}",
                f"--seed-file={self.state / 'munge' / 'munged.seed'}",
                f"--log-file={self.state / 'log' / 'munged.log'}",
            ],
        )
        self._wait_until(socket_path.exists, "munged's socket", START_TIMEOUT_S, "munged")

    def _start_mariadb(self) -> None:
        data = self.state / "mysql" / "data"
        self._run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]
        )
        socket_path = self.state / "mysql" / "mysqld.sock"
        self._spawn(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={socket_path}",
                f"--port={self.mysql_port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--user=root",
                f"--pid-file={self.state / 'mysql' / 'mysqld.pid'}",
                f"--log-error={self.state / 'log' / 'mariadbd.log'}",
                "--innodb-buffer-pool-size=64M",
                "--innodb-lock-wait-timeout=900",
            ],
        )
        self._wait_until(socket_path.exists, "MariaDB's socket", START_TIMEOUT_S, "mariadbd")
        self._run(
            [
                "mariadb",
                "--no-defaults",
                f"--socket={socket_path}",
                "--user=root",
                "--execute",
                f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}';"
                " GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';",
            ]
        )

    def _start_slurmdbd(self) -> None:
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        self._wait_until(self._dbd_answers, "slurmdbd", START_TIMEOUT_S, "slurmdbd")
        self._run(["sacctmgr", "-i", "add", "cluster", self.cluster])
        self._run(
            [
                "sacctmgr",
                "-i",
                "add",
                "account",
                self.account,
                f"cluster={self.cluster}",
                "description=affect4k test",
                "organization=affect4k",
            ]
        )
        self._run(
            [
                "sacctmgr",
                "-i",
                "add",
                "user",
                "root",
                f"account={self.account}",
                f"cluster={self.cluster}",
            ]
        )

    def _dbd_answers(self) -> bool:
        result = subprocess.run(
            ["sacctmgr", "-n", "list", "cluster"],
            capture_output=True,
            env=self._daemon_env(),
            check=False,
        )
        return result.returncode == 0

    def _start_slurmctld(self) -> None:
        # -i: ignore state a crashed earlier run may have saved (the state dir is fresh anyway).
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._wait_until(
            lambda: (
                subprocess.run(
                    ["scontrol", "ping"],
                    capture_output=True,
                    text=True,
                    env=self._daemon_env(),
                    check=False,
                ).stdout.count("UP")
                > 0
            ),
            "slurmctld",
            START_TIMEOUT_S,
            "slurmctld",
        )

    def _start_slurmd(self) -> None:
        self._spawn("slurmd", ["slurmd", "-D", "-N", "localhost"])
        self._wait_until(self._node_idle, "the node to be idle", START_TIMEOUT_S, "slurmd")

    def _node_idle(self) -> bool:
        result = subprocess.run(
            ["sinfo", "--noheader", "--format", "%t"],
            capture_output=True,
            text=True,
            env=self._daemon_env(),
            check=False,
        )
        return result.stdout.strip() == "idle"
