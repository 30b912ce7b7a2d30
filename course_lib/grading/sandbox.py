"""The sandbox a submitted notebook's kernel runs in ("How to use this course", "What the sandbox
guarantees"), built from bubblewrap (``bwrap``, Debian's ``bubblewrap``) and util-linux's
``prlimit`` and ``setpriv``.

Inside, the kernel sees the system (``/usr``, ``/etc``), Python, the virtual environment,
``course_lib`` and the datasets, all read-only, and one writable folder: the notebook's scratch copy.
It does not see the submissions folder, the grader's home or output folder, the rest of the course
repository (the solutions), other notebooks' scratch folders or the GPUs. It has no network (a
network namespace of its own, with only loopback), its own process namespace (it can signal only
its own processes; killing its parent ends its own sandbox), and limits per process, set with
``prlimit`` before the kernel starts so that no learner code ever runs without them and none can
raise them (soft = hard): memory (``RLIMIT_DATA``: the heap and anonymous mappings, so a large
allocation fails with MemoryError instead of the machine swapping), processes and threads
(``RLIMIT_NPROC``), CPU seconds (``RLIMIT_CPU``) and file size (``RLIMIT_FSIZE``). Process limits
are rlimits, not cgroups: they need no privileges or systemd, but memory is counted per process.

Run as root, bwrap keeps the host's user (no user namespace) and the kernel drops to an unused uid
of its own with ``setpriv`` (no capabilities, no new privileges): Linux does not count root's
processes against ``RLIMIT_NPROC``, and a uid per notebook gives each its own count. Run as
another user, bwrap makes a user namespace and drops every capability.
"""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

GiB = 1024 ** 3
FIRST_UID = 200_000   # root's sandboxes run as FIRST_UID + a number no other live process has


@dataclass(frozen=True)
class Limits:
    """What one notebook's kernel may use, per process (see the module's docstring)."""
    memory: int = 4 * GiB           # bytes of heap and anonymous memory
    processes: int = 256            # processes and threads of the sandbox's user
    cpu_seconds: int = 1800         # CPU time
    file_size: int = 1 * GiB        # bytes per file written

    def describe(self) -> str:
        return (f"{self.memory / GiB:g} GiB of memory and {self.cpu_seconds} CPU seconds per process, "
                f"{self.processes} processes and threads, files up to {self.file_size / GiB:g} GiB")


def read_only_paths() -> list:
    """What the kernel needs to read: the system, Python, the environment, course_lib, the data."""
    import course_lib
    from course_lib.config import data_dir
    paths = ["/usr", "/etc", sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(course_lib.__file__), "/sys/devices/system/cpu"]
    paths += [p for p in sys.path if p.startswith((sys.prefix, sys.base_prefix)) and os.path.isdir(p)]
    if data_dir().is_dir():
        paths.append(str(data_dir()))
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})


def folders_above(paths) -> list:
    """Every folder above ``paths`` (outer first), which bwrap creates before binding into them."""
    above = {str(parent) for p in paths for parent in Path(p).parents if str(parent) != "/"}
    return sorted(above, key=lambda p: (p.count("/"), p))


class Sandbox:
    """The bwrap command line that runs ``argv`` with ``writable`` (a list of folders) as the only
    places it may write; ``uid`` is the unprivileged user a root grader's kernel runs as."""

    def __init__(self, limits: Limits = Limits(), uid: int | None = None):
        self.limits = limits
        self.as_root = os.geteuid() == 0
        self.uid = uid if uid is not None else unused_uid()

    def command(self, argv: list, writable: list, workdir: Path, env: dict) -> list:
        reads = read_only_paths()
        command = ["bwrap", "--die-with-parent", "--new-session", "--clearenv"]
        for folder in folders_above(reads + [str(w) for w in writable]):
            command += ["--perms", "0755", "--dir", folder]
        for path in reads:
            command += ["--ro-bind", path, path]
        for top in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink(f"/{top}"):
                command += ["--symlink", os.readlink(f"/{top}"), f"/{top}"]
        for folder in writable:
            command += ["--bind", str(folder), str(folder)]
        command += ["--dev", "/dev", "--proc", "/proc", "--remount-ro", "/", "--chdir", str(workdir)]
        for name, value in env.items():
            command += ["--setenv", name, str(value)]
        if self.as_root:
            command += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                        "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                        "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
        else:
            command += ["--unshare-all", "--cap-drop", "ALL"]
        return command + self.prlimit() + ["--", *argv]

    def prlimit(self) -> list:
        lim = self.limits
        return ["prlimit", f"--data={lim.memory}", f"--nproc={lim.processes}", f"--cpu={lim.cpu_seconds}",
                f"--fsize={lim.file_size}"]

    def own(self, *paths):
        """Give the sandbox's user the folders it may write (as root; otherwise they are ours)."""
        if self.as_root:
            for path in paths:
                os.chown(path, self.uid, self.uid)


def unused_uid() -> int:
    """A uid no account has, different for every live process that asks (it adds our pid)."""
    uid = FIRST_UID + os.getpid()
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def sandbox_problem(limits: Limits = Limits()) -> str:
    """Why the sandbox cannot run here ("" when it can): bwrap, setpriv or prlimit missing, or a
    sandboxed Python failing to start (no user namespaces, a container that forbids mounts...)."""
    missing = [tool for tool in ("bwrap", "prlimit") + (("setpriv",) if os.geteuid() == 0 else ())
               if shutil.which(tool) is None]
    if missing:
        return (f"{' and '.join(missing)} not found: install bubblewrap (Debian/Ubuntu: apt-get install "
                f"bubblewrap util-linux)")
    with tempfile.TemporaryDirectory(prefix="course-grade-probe-") as folder:
        sandbox = Sandbox(limits)
        sandbox.own(folder)
        command = sandbox.command([sys.executable, "-c", "import course_lib"], [folder], Path(folder),
                                  sandbox_env(Path(folder)))
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap could not start a sandbox ({error})"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return f"bwrap could not start a sandbox ({lines[-1] if lines else f'exit status {result.returncode}'})"
    return ""


def sandbox_env(workdir: Path) -> dict:
    """The kernel's environment: nothing inherited but the course's settings and the paths it needs."""
    import course_lib
    from course_lib.config import data_dir
    env = {"HOME": workdir, "TMPDIR": workdir, "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
           "PYTHONPATH": os.path.dirname(os.path.dirname(course_lib.__file__)), "COURSE_QUICK": "1",
           "MPLBACKEND": "Agg", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    if data_dir().is_dir():
        env["COURSE_DATA_DIR"] = data_dir()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
