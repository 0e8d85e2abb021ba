"""Router worker processes: several routers share the port (SO_REUSEPORT), each a forked copy
of the router process with its own event loop, so the router uses more than one core.

The parent only supervises. It forks the workers, relays wake-up hints from the router's wake
socket to each worker's own, restarts a worker that dies on its own, and on SIGTERM or SIGINT
stops them all with SIGTERM (each finishes its requests in flight). A worker whose parent is
gone, even killed, sees end-of-file on a pipe and stops as if told to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from kapal.store.notify import notify

logger = logging.getLogger(__name__)

# A worker that ran this long before it died is started again; one that dies sooner (a port
# in use, a broken store) stops the router, whose own supervisor (`kapal up`) retries later.
STABLE_AFTER = 5.0
POLL = 0.2  # seconds between looks at the workers while no hint arrives

# Runs one worker: (index, fd of the pipe whose end-of-file says the parent is gone). Returns
# when the worker stopped; raising makes the worker exit with status 1.
RunWorker = Callable[[int, int], None]


def worker_wake_socket(run_dir: Path, index: int) -> Path:
    return run_dir / f"router.wake.{index}"


class Workers:
    """Forked worker processes, by pid."""

    def __init__(self, run: RunWorker, inherited: list[int]) -> None:
        self.run = run
        self.inherited = inherited  # the parent's descriptors a worker closes
        self.pids: dict[int, int] = {}  # pid -> worker index
        self.started: dict[int, float] = {}  # worker index -> when
        self.stopping = False
        self.failed = False
        self._alive, self._alive_w = os.pipe()

    def start(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                for fd in (self._alive_w, *self.inherited):
                    os.close(fd)
                self.run(index, self._alive)
                code = 0
            except KeyboardInterrupt:
                code = 0
            except BaseException:
                logger.exception("router worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.pids[pid] = index
        self.started[index] = time.monotonic()

    def reap(self) -> None:
        """Collect exited workers; restart those that had been running a while."""
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index = self.pids.pop(pid, None)
            if index is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if time.monotonic() - self.started[index] < STABLE_AFTER:
                logger.error("router worker %d exited with status %d at start", index, code)
                self.failed = self.stopping = True
                return
            logger.warning("router worker %d exited with status %d; restarting it", index, code)
            self.start(index)

    def stop(self, grace: float) -> None:
        """SIGTERM to every worker; SIGKILL to those still running after `grace` seconds."""
        self.stopping = True
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.pids and time.monotonic() < deadline:
            time.sleep(0.05)
            self.reap()
        for pid in list(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids.clear()
        os.close(self._alive_w)
        os.close(self._alive)


def in_child(work: Callable[[], object]) -> None:
    """Run `work` in a short-lived forked process: what it loads (Alembic for migrations, the
    x509 builder) then weighs neither on the parent nor on the workers forked from it."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        except BaseException:
            logger.exception("start-up failed")
        finally:
            logging.shutdown()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("start-up failed; the reason is logged above")


def _bind_hints(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    return sock


def supervise(count: int, wake_socket: Path, run: RunWorker, grace: float) -> int:
    """Run `count` workers until SIGTERM or SIGINT; the exit status for the router process."""
    hints = _bind_hints(wake_socket)
    workers = Workers(run, [hints.fileno()])

    def on_signal(signum: int, frame: object) -> None:
        workers.stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    relay = [worker_wake_socket(wake_socket.parent, index) for index in range(count)]
    try:
        for index in range(count):
            workers.start(index)
        while not workers.stopping:
            readable, _, _ = select.select([hints], [], [], POLL)
            if readable:
                with contextlib.suppress(BlockingIOError):
                    while hints.recv(64):
                        pass
                notify(*relay)
            workers.reap()
        logger.info("router stopping %d workers", len(workers.pids))
    finally:
        workers.stop(grace)
        hints.close()
        with contextlib.suppress(FileNotFoundError):
            wake_socket.unlink()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if workers.failed else 0
