"""Real `storepos` processes for end-to-end and chaos runs; every process started is stopped at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from central.registers import identities
from devtools import enrolment
from runtime.ready import wait_ready_file
from storenode.config import load_config
from storenode.identity import save_token

STORE_TOML = """\
store = "E2E"
name = "End to end"
lanes = [1, 2]
data_dir = "store-data"

[gateway]
port = 0

[central]
url = "{central}"
ca = "{ca}"
heartbeat = 1.0
"""


def enrol(central_db: Path, config: Path) -> None:
    """Enrol the store of `config` at the central whose database is `central_db`, as its operators
    would: `storepos central store enroll` there (the same function), the token kept for the store's
    first connect as `storepos store init --token` keeps it. Done before the store starts."""
    settings = load_config(config)
    save_token(settings.data_path, identities.enrol_at(central_db, settings.store))


class Processes:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: list[trio.Process] = []

    async def start(self, name: str, *args: str) -> tuple[trio.Process, str]:
        """Start `storepos ARGS --ready-file F` and wait until it says where it listens."""
        if args[:2] == ("store", "run") and "--config" in args:  # its tills enrolled, as an operator would
            enrolment.prepare(load_config(args[args.index("--config") + 1]), enrolment.session_chain())
        ready = self.folder / f"{name}.ready"
        ready.unlink(missing_ok=True)
        log = (self.folder / f"{name}.log").open("ab")
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "storepos", *args, "--ready-file", str(ready)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        self.running.append(proc)
        try:
            with trio.fail_after(30):
                info = await wait_ready_file(ready, alive=lambda: proc.poll() is None)
        except BaseException:
            print((self.folder / f"{name}.log").read_text())
            raise
        return proc, info["url"]

    def kill9(self, proc: trio.Process) -> None:
        os.kill(proc.pid, signal.SIGKILL)

    async def stop_all(self) -> None:
        with trio.CancelScope(shield=True):
            for proc in self.running:
                if proc.poll() is None:
                    proc.terminate()
                    with trio.move_on_after(5):
                        await proc.wait()
                if proc.poll() is None:
                    proc.kill()
                    await proc.wait()


async def storepos(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run one `storepos` command to completion, as an operator would."""
    with trio.fail_after(60):
        return await trio.run_process(
            [sys.executable, "-m", "storepos", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
