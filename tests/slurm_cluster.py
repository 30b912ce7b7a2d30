"""A complete single-node Slurm cluster on this machine, for the tests of the reproduction on Slurm.

    python tests/slurm_cluster.py          # start it (or find it running); .ci/run does this
    python tests/slurm_cluster.py --stop   # stop the daemons it started (their pid files)

Debian's packages ``munge``, ``slurmctld``, ``slurmd`` and ``slurm-client`` hold everything; this module
writes a ``slurm.conf`` with one node (this host's short name, all its cores, one partition
``debug``) and a munge key into its own folder (:data:`STATE`), starts ``munged`` on its own socket,
``slurmctld`` and ``slurmd`` as root, and waits for ``sinfo`` to show the node idle. It touches
neither ``/etc/slurm`` nor a system munge: clients find the cluster through ``SLURM_CONF``
(:func:`client_env`), so a machine's own Slurm set-up is never used or changed. The pytest fixture
(``tests/test_slurm.py``) reuses a running cluster or starts one and stops, by process id, only the
daemons it started.
"""
import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

STATE = Path(os.environ.get("COURSE_SLURM_DIR") or Path(tempfile.gettempdir()) / "beyond-backprop-slurm")
CONF = STATE / "slurm.conf"
MUNGE_SOCKET = STATE / "munge" / "munge.socket"
DAEMONS = ("munged", "slurmctld", "slurmd")
PACKAGES = "munge slurmctld slurmd slurm-client"


class ClusterUnavailable(RuntimeError):
    """Why no cluster could be started here (a missing package, not root, a daemon that failed)."""


def client_env(env=None) -> dict:
    """The environment that points Slurm's commands (sbatch, squeue, sinfo) at this cluster."""
    return dict(os.environ if env is None else env, SLURM_CONF=str(CONF))


def node_state() -> str:
    """``sinfo``'s state of the node ("idle", "mixed", ...), or "" when the cluster does not answer."""
    if not shutil.which("sinfo") or not CONF.exists():
        return ""
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%T"], env=client_env(), capture_output=True,
                             text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""


def running() -> bool:
    """True when this cluster's controller runs and its node takes jobs (without a controller, sinfo
    would retry for seconds before it gives up)."""
    return alive("slurmctld") and node_state().rstrip("*") in ("idle", "mixed", "allocated", "completing")


def pid_file(daemon: str) -> Path:
    return STATE / f"{daemon}.pid"


def slurm_conf() -> str:
    """One controller and one node, this host; no cgroups, no accounting daemon (the course's jobs need
    neither); a cancelled job is killed 2 s after its SIGTERM (Slurm's default, 30 s, slows the tests);
    Slurm's own defaults for the rest."""
    host = socket.gethostname().split(".")[0]
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 ** 20
    return f"""\
ClusterName=beyond-backprop
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={MUNGE_SOCKET}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=2
StateSaveLocation={STATE}/ctld
SlurmdSpoolDir={STATE}/d
SlurmctldPidFile={pid_file("slurmctld")}
SlurmdPidFile={pid_file("slurmd")}
SlurmctldLogFile={STATE}/slurmctld.log
SlurmdLogFile={STATE}/slurmd.log
SlurmctldPort=6917
SlurmdPort=6918
MpiDefault=none
NodeName={host} CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def start(timeout: float = 30) -> dict:
    """Start the daemons that are not running yet and wait for the node to be idle; return
    ``{daemon: process id}`` of the daemons this call started (none when the cluster was already up)."""
    if running():
        return {}
    missing = [d for d in (*DAEMONS, "sinfo", "sbatch") if not shutil.which(d)]
    if missing:
        raise ClusterUnavailable(f"{', '.join(missing)} not installed (Debian/Ubuntu: apt-get install {PACKAGES})")
    if os.geteuid() != 0:
        raise ClusterUnavailable("the test cluster's daemons run as root, and this is not root")
    for folder in (STATE / "ctld", STATE / "d", MUNGE_SOCKET.parent):
        folder.mkdir(parents=True, exist_ok=True)
    MUNGE_SOCKET.parent.chmod(0o700)
    CONF.write_text(slurm_conf())
    key = STATE / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(secrets.token_bytes(128))
        key.chmod(0o400)
    commands = {"munged": ["munged", "--force", f"--socket={MUNGE_SOCKET}", f"--key-file={key}",
                           f"--pid-file={pid_file('munged')}", f"--log-file={STATE}/munged.log",
                           f"--seed-file={STATE}/munge/munged.seed"],
                "slurmctld": ["slurmctld", "-f", str(CONF)], "slurmd": ["slurmd", "-f", str(CONF)]}
    started = {}
    for daemon in DAEMONS:
        if alive(daemon):
            continue
        pid_file(daemon).unlink(missing_ok=True)
        result = subprocess.run(commands[daemon], env=client_env(), capture_output=True, text=True)
        pid = wait_for_pid(daemon)
        if result.returncode != 0 or pid is None:
            stop(started)
            raise ClusterUnavailable(f"{daemon} did not start ({(result.stderr or result.stdout).strip()[-300:]}); "
                                     f"see {STATE}/{daemon}.log")
        started[daemon] = pid
    deadline = time.monotonic() + timeout
    while not running():
        if time.monotonic() > deadline:
            stop(started)
            raise ClusterUnavailable(f"the node did not become idle in {timeout:.0f} s (sinfo: {node_state()!r}); "
                                     f"see {STATE}/slurmctld.log and slurmd.log")
        time.sleep(0.5)
    return started


def alive(daemon: str) -> bool:
    pid = read_pid(daemon)
    return pid is not None and Path(f"/proc/{pid}").exists()


def read_pid(daemon: str):
    try:
        return int(pid_file(daemon).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_for_pid(daemon: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive(daemon):
            return read_pid(daemon)
        time.sleep(0.1)
    return None


def stop(started: dict) -> None:
    """Stop the daemons a :func:`start` returned (``{daemon: pid}``), by process id: SIGTERM to the Slurm
    daemons together (each takes about 2 s), then to munged, which they need until they have ended."""
    for group in ([started[d] for d in ("slurmd", "slurmctld") if d in started], [started.get("munged")]):
        group = [pid for pid in group if pid is not None]
        for pid in group:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in group) and time.monotonic() < deadline:
            time.sleep(0.1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stop", action="store_true", help="stop the daemons named in the cluster's pid files")
    args = parser.parse_args()
    if args.stop:
        stop({daemon: read_pid(daemon) for daemon in DAEMONS if alive(daemon)})
        print("stopped")
    else:
        try:
            pids = start()
        except ClusterUnavailable as e:
            raise SystemExit(f"no Slurm cluster: {e}")
        print(f"Slurm cluster up ({'started ' + ', '.join(f'{d} {p}' for d, p in pids.items()) if pids else 'already running'}); "
              f"clients: SLURM_CONF={CONF}")
