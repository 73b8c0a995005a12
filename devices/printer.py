"""Receipt printer actor: ESC/POS bytes made by python-escpos, written to where the printer is.

The foundation's printer is a file (each receipt appended, bytes exactly as a printer would receive
them). Printing runs beside the lanes under the devices supervisor, so a failing printer never
delays a sale: the sale is in the journal before anything is printed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import trio
from escpos.printer import Dummy

from runtime.health import HealthBoard
from runtime.mailbox import Mailbox

log = logging.getLogger(__name__)


class PrintJob:
    __slots__ = ("job_id", "text")

    def __init__(self, job_id: str, text: str) -> None:
        self.job_id = job_id
        self.text = text


def encode_receipt(text: str) -> bytes:
    """ESC/POS for a plain-text receipt: initialise, the text, feed and a partial cut."""
    printer = Dummy()
    printer.hw("INIT")
    printer.text(text)
    printer.cut(mode="PART")
    return bytes(printer.output)


class FilePrinter:
    def __init__(self, name: str, path: Path, health: HealthBoard, *, capacity: int = 256) -> None:
        self.name = name
        self.path = path
        self.mailbox: Mailbox[PrintJob] = Mailbox(capacity)
        self._health = health

    def submit(self, job: PrintJob) -> bool:
        """Queue without waiting: a full queue is reported, never allowed to block a lane."""
        queued = self.mailbox.tell_nowait(job)
        if not queued:
            log.warning("printer %s queue full; receipt %s not printed", self.name, job.job_id)
            self._health.set(self.name, "queue-full", detail=f"dropped {job.job_id}")
        return queued

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        task_status.started()
        while True:
            envelope = await self.mailbox.receive()
            job = envelope.message
            data = encode_receipt(job.text)
            async with await trio.open_file(self.path, "ab") as f:
                await f.write(data)
            self._health.set(self.name, "running", detail=f"printed {job.job_id}")
