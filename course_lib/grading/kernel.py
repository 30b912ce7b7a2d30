"""A submitted notebook's Jupyter kernel, in its sandbox ("How to use this course", "Grading"):
start it, run the notebook's cells within a time limit, then answer the grader's calls.

The kernel talks to the grader over Unix sockets in a folder of the scratch copy (the sandbox has
no network, not even to the grader), and is interrupted by a message on its control channel (a
signal could not reach it in its own process namespace). Without a sandbox (``--no-sandbox``) it
is an ordinary kernel in the scratch folder.
"""
import ast
import json
import queue
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from .sandbox import Sandbox, sandbox_env

KERNEL_NAME = "course-grade"
MAX_KEPT_OUTPUT = 20_000   # characters of a cell's output kept in memory while running
INTERRUPT_GRACE = 10.0     # seconds an interrupted kernel gets to answer before it counts as stuck


class KernelDied(Exception):
    """The kernel ended while the grader waited for it."""


class KernelTimeout(Exception):
    """The kernel did not answer within the time given."""


class SandboxedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, handing the connection file to the sandbox's user."""
    sandbox = None

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if self.sandbox is not None:
            self.sandbox.own(self.connection_file)


def kernel_spec(folder: Path, sandbox, workdir: Path, ipc: Path) -> KernelSpecManager:
    """A kernel spec named :data:`KERNEL_NAME` in ``folder``: ipykernel, inside ``sandbox`` if any."""
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.hist_file=:memory:"]
    env = sandbox_env(workdir)
    if sandbox is not None:
        argv = sandbox.command(argv, [workdir, ipc], workdir, env)
    spec = {"argv": argv, "display_name": "course-grade", "language": "python", "interrupt_mode": "message",
            "env": {} if sandbox is not None else {k: str(v) for k, v in env.items()}}
    (folder / KERNEL_NAME).mkdir(parents=True, exist_ok=True)
    (folder / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(folder)])


class NotebookKernel:
    """The kernel of notebook ``path`` (its scratch copy, in ``scratch/work``); a context manager."""

    def __init__(self, path: Path, scratch: Path, sandbox: Sandbox | None):
        self.nb = nbformat.read(path, as_version=4)
        self.work, ipc = scratch / "work", scratch / "ipc"
        ipc.mkdir(exist_ok=True)
        if sandbox is not None:
            sandbox.own(self.work, ipc, path)
        km = SandboxedKernelManager(kernel_spec_manager=kernel_spec(scratch / "kernels", sandbox, self.work, ipc),
                                    kernel_name=KERNEL_NAME, transport="ipc", ip=str(ipc / "k"),
                                    connection_file=str(ipc / "connection.json"))
        km.sandbox = sandbox
        self.km = km
        self.client = NotebookClient(self.nb, km=km, timeout=60, allow_errors=True, interrupt_on_timeout=False,
                                     record_timing=False, resources={"metadata": {"path": str(self.work)}})
        self.stuck = False

    def __enter__(self):
        self._setup = self.client.setup_kernel(cwd=str(self.work))
        self._setup.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            return self._setup.__exit__(*exc)
        except Exception:  # a kernel that will not shut down is killed by its sandbox with the runner
            return False

    def run_cells(self, limit: float) -> dict:
        """Run every code cell, ``limit`` seconds in all; cells that raise do not stop the run. The
        report: cells run, each error (cell, name, message, source), where it ran out of time or died."""
        report = {"cells_run": 0, "errors": [], "timed_out_at": None, "died_at": None}
        deadline = time.monotonic() + limit
        for k, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                report["timed_out_at"] = k
                break
            outcome = self.run_cell(k, cell, remaining)
            if outcome == "died":
                report["died_at"] = k
                break
            report["cells_run"] += 1
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            if errors:
                report["errors"].append({"cell": k, "ename": errors[0].get("ename", ""),
                                         "evalue": str(errors[0].get("evalue", ""))[:300], "source": cell.source})
            shorten_outputs(cell)
            if outcome == "timeout":
                report["timed_out_at"] = k
                break
        return report

    def run_cell(self, k: int, cell, seconds: float) -> str:
        """"ran", "timeout" (interrupted at the limit) or "died". A kernel that does not come back
        from the interrupt (stuck in C code, say) is left alone: the grader's calls then time out."""
        self.client.timeout = max(1, int(seconds))
        try:
            self.client.execute_cell(cell, k)
        except CellTimeoutError:
            self.interrupt()
            return "timeout"
        except DeadKernelError:
            return "died"
        except CellExecutionError:
            pass
        except RuntimeError as error:  # the kernel died while nbclient waited for a reply
            if "dead" in str(error).lower() or "kernel" in str(error).lower():
                return "died"
            raise
        return "ran"

    def interrupt(self):
        """Interrupt the kernel and wait for it to answer again (else it counts as stuck)."""
        run_sync(self.km.interrupt_kernel)()
        try:
            self.evaluate("", "'ok'", INTERRUPT_GRACE)
        except (KernelTimeout, KernelDied):
            self.stuck = True

    def evaluate(self, code: str, expression: str, seconds: float) -> str:
        """Run ``code`` silently, then return ``expression``'s value, which must be a str. Raises
        :class:`KernelTimeout` after ``seconds`` (the kernel is interrupted) or :class:`KernelDied`."""
        if self.stuck:
            raise KernelTimeout
        return run_sync(self._evaluate)(code, expression, seconds)

    async def _evaluate(self, code, expression, seconds):
        kc = self.client.kc
        msg_id = kc.execute(code, silent=True, store_history=False, user_expressions={"value": expression},
                            allow_stdin=False)
        try:
            reply = await self._reply(msg_id, seconds)
        except KernelTimeout:
            await self.km.interrupt_kernel()
            try:
                await self._reply(msg_id, INTERRUPT_GRACE)
            except KernelTimeout:
                self.stuck = True
            raise
        finally:
            await self._drain_iopub()
        value = reply.get("user_expressions", {}).get("value", {})
        if reply.get("status") != "ok" or value.get("status") != "ok":
            raise KernelDied(f"the grader's call failed in the kernel ({value.get('ename') or reply.get('ename')}: "
                             f"{value.get('evalue') or reply.get('evalue')})")
        return ast.literal_eval(value["data"]["text/plain"])

    async def _reply(self, msg_id, seconds):
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KernelTimeout
            try:
                msg = await self.client.kc.get_shell_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                if not await self.km.is_alive():
                    raise KernelDied("the notebook's kernel died") from None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg["content"]

    async def _drain_iopub(self):
        while True:
            try:
                await self.client.kc.get_iopub_msg(timeout=0.01)
            except queue.Empty:
                return


def shorten_outputs(cell):
    """Keep little of what a cell printed: a notebook printing megabytes must not fill memory."""
    kept = 0
    for out in cell.outputs:
        if out.get("output_type") == "stream":
            out["text"] = out["text"][:max(0, MAX_KEPT_OUTPUT - kept)]
            kept += len(out["text"])
        elif "data" in out:
            out["data"] = {}
