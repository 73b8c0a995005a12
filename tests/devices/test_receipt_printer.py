"""The receipt printer actor against the virtual printer: over real loopback TCP where the behaviour is about
connections, in virtual time over memory streams where it is about waiting (a reply that never comes)."""

from __future__ import annotations

import logging

import pytest
import trio

from devices.escpos import PrinterStatus, status_request
from devices.receipt_printer import PrinterOffline, ReceiptPrinter, TcpTransport
from devices.sim.printer import VirtualPrinter
from runtime.health import HealthBoard
from runtime.supervision import Backoff, ChildSpec, Supervisor
from tests.kit.printing import LAYOUT, make_record, memory_printer

DEADLINE = 10
FAST = {"poll_interval": 0.02, "idle_poll": 0.05, "reply_timeout": 1.0, "connect_timeout": 1.0}


@pytest.fixture
async def sim(nursery: trio.Nursery) -> VirtualPrinter:
    printer = VirtualPrinter()
    await nursery.start(printer.run)
    return printer


@pytest.fixture
def health() -> HealthBoard:
    return HealthBoard()


def tcp_printer(sim: VirtualPrinter, health: HealthBoard, **options: object) -> ReceiptPrinter:
    return ReceiptPrinter("printer", TcpTransport("127.0.0.1", sim.port), health, layout=LAYOUT, **{**FAST, **options})  # type: ignore[arg-type]


def supervised(printer: ReceiptPrinter, health: HealthBoard) -> Supervisor:
    """As the store node's devices supervisor runs it: one for one, quick capped backoff, never escalates."""
    return Supervisor(
        "devices",
        [ChildSpec(printer.name, printer.run)],
        backoff=Backoff(initial=0.05, factor=2.0, cap=0.2),
        escalate=False,
        health=health,
    )


async def test_prints_a_receipt_between_two_status_checks(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery
) -> None:
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        assert printer.print_receipt(make_record()) == "S001-1-42"
        await printer.drained()
    text = sim.text()
    assert text.count("[QR: S001-1-42]") == 1
    assert "TOTAL                           SEK 286.10" in text
    assert "Change                               14.00" in text
    assert text.rstrip().endswith("[CUT]")
    wire = bytes(sim.received)
    job = wire.index(b"\x1b@")
    before, after = wire[:job], wire[job:]
    assert before.endswith(status_request(1) + status_request(2) + status_request(4))
    assert after[after.index(b"\x1dV") :].startswith(b"\x1dV\x01" + status_request(1))  # cut, then status
    assert health.get("printer").state == "running"
    assert printer.status == PrinterStatus()
    assert printer.queue_depth == 0 and printer.done_count == 1


async def test_paper_out_before_a_job_waits_and_prints_once_when_paper_is_back(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery
) -> None:
    sim.set_paper("out")
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        printer.print_receipt(make_record())
        await health.wait_until("printer", lambda h: "S001-1-42 waits" in h.detail)
        assert health.get("printer").state == "paper-out"
        polls = len(sim.status_queries)
        await sim.wait_until(lambda: len(sim.status_queries) >= polls + 15)  # it keeps polling...
        assert printer.queue_depth == 1 and b"TOTAL" not in sim.received  # ...and sends nothing
        assert printer.status is not None and printer.status.paper_end
        sim.set_paper("ok")
        await printer.drained()
    assert sim.text().count("[QR: S001-1-42]") == 1
    assert health.get("printer").state == "running"


@pytest.mark.parametrize(("fault", "word"), [("paper-out", "paper-out"), ("cover-open", "cover-open")])
async def test_a_fault_in_the_middle_of_a_job_is_waited_out_not_reprinted(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery, fault: str, word: str
) -> None:
    """The printer holds the rest of the job and prints it on recovery: sending it again would print twice."""
    sim.fault_after(300, fault)  # type: ignore[arg-type]
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        printer.print_receipt(make_record())
        await health.wait_until("printer", lambda h: h.state == word)
        assert printer.queue_depth == 1  # not done while the printer cannot have printed it
        assert "Hörnbutiken" in sim.text() and "[QR" not in sim.text()
        sim.set_paper("ok")
        sim.set_cover(False)
        await printer.drained()
    text = sim.text()
    assert text.count("[QR: S001-1-42]") == 1 and text.count("Hörnbutiken") == 1
    assert "INTERRUPTED" not in text


async def test_connection_reset_mid_job_restarts_and_reprints_once(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery
) -> None:
    sim.fault_after(300, "reset")
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(supervised(printer, health).run)
        printer.print_receipt(make_record())
        await printer.drained()
    text = sim.text()
    notice = text.index("*** PRINT INTERRUPTED ***")
    partial, rest = text[:notice], text[notice:]
    assert "Hörnbutiken" in partial and "[QR" not in partial  # the fragment, closed by the notice
    assert rest.count("Hörnbutiken") == 1 and rest.count("[QR: S001-1-42]") == 1  # then the whole receipt, once
    assert rest.index("Hörnbutiken") < rest.index("Change") < rest.index("[QR: S001-1-42]")
    assert len(sim.connections) == 2
    assert health.get("printer").restarts == 1
    assert health.get("printer").state == "running"


async def test_unplugged_printer_is_offline_backs_off_and_comes_back_on_the_same_port(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery
) -> None:
    printer = tcp_printer(sim, health)
    port = sim.port
    with trio.fail_after(DEADLINE):
        await nursery.start(supervised(printer, health).run)
        printer.print_receipt(make_record(1))
        await printer.drained()
        sim.unplug()
        await health.wait_until("printer", lambda h: h.restarts >= 3)  # restarting, with backoff, for ever
        entry = health.get("printer")
        assert entry.state in ("offline", "backoff", "starting")
        assert entry.detail.startswith("offline: ") and "PrinterOffline" in entry.last_error
        assert not printer.connected
        printer.print_receipt(make_record(2))  # a sale while unplugged: queued, the lane never waits
        assert printer.queue_depth == 1
        assert await nursery.start(sim.run) == port  # plugged back in
        await printer.drained()
        await health.wait_until("printer", lambda h: h.state == "running")
    text = sim.text()
    assert text.count("[QR: S001-1-1]") == 1 and text.count("[QR: S001-1-2]") == 1


async def test_garbage_before_a_status_reply_is_logged_and_skipped(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="devices.receipt_printer")
    sim.inject_noise(b"\xff\x00\x80")  # none has the fixed bits of a status byte
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        printer.print_receipt(make_record())
        await printer.drained()
    assert printer.noise_count == 3
    assert "0xff is not a DLE EOT 1 reply" in caplog.text
    assert printer.connected and health.get("printer").state == "running"
    assert sim.text().count("[QR: S001-1-42]") == 1


async def test_a_stray_byte_that_looks_like_a_reply_does_not_shift_later_replies(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """0x12 passes the fixed-bit check, so it is taken for the first reply; the real reply it displaced must
    be dropped before the next request, or every later answer would belong to the question before."""
    caplog.set_level(logging.WARNING, logger="devices.receipt_printer")
    sim.set_paper("out")
    sim.inject_noise(b"\x12")
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        printer.print_receipt(make_record())
        await health.wait_until("printer", lambda h: h.state == "paper-out")
        polls = len(sim.status_queries)
        await sim.wait_until(lambda: len(sim.status_queries) >= polls + 9)
        assert printer.status == sim.status
        assert "skipped 1 unexpected bytes: 1a" in caplog.text
        sim.set_paper("ok")
        await printer.drained()
    assert sim.text().count("[QR: S001-1-42]") == 1


async def test_duplicate_job_ids_print_once(sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery) -> None:
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        printer.submit("job-1", b"hello\n")
        printer.submit("job-1", b"hello\n")
        assert printer.queue_depth == 1
        await printer.drained()
        printer.submit("job-1", b"hello\n")  # already printed: still the same job
        printer.submit("job-2", b"world\n")
        await printer.drained()
    assert sim.text() == "hello\nworld\n"


async def test_a_thousand_jobs_drain_in_order(sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery) -> None:
    printer = tcp_printer(sim, health)
    expected = [f"job {i:04d}" for i in range(1000)]
    for i, line in enumerate(expected):  # queued before the printer even runs: submit never waits
        printer.submit(f"j{i}", f"{line}\n".encode())
    assert printer.queue_depth == 1000
    with trio.fail_after(60):
        await nursery.start(printer.run)
        await printer.drained()
    assert sim.text().splitlines() == expected
    assert printer.done_count == 1000


async def test_cannot_connect_publishes_offline_and_raises(health: HealthBoard, nursery: trio.Nursery) -> None:
    sim = VirtualPrinter()
    await nursery.start(sim.run)
    sim.unplug()
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE), pytest.raises(PrinterOffline, match=r"cannot connect to tcp 127\.0\.0\.1"):
        await printer.run()
    entry = health.get("printer")
    assert entry.state == "offline" and entry.detail.startswith("offline: cannot connect")


async def test_a_lost_reply_is_asked_for_again(
    autojump_clock: trio.abc.Clock, health: HealthBoard, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    sim = VirtualPrinter()
    printer = memory_printer(sim, health, nursery, reply_timeout=2.0)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        sim.mute_replies(1)
        printer.print_receipt(make_record())
        await printer.drained()
    assert "no reply to DLE EOT 1 within 2 s, asking again" in caplog.text
    assert printer.connected and sim.text().count("[QR: S001-1-42]") == 1


async def test_a_printer_that_stops_answering_is_offline(
    autojump_clock: trio.abc.Clock, health: HealthBoard, nursery: trio.Nursery
) -> None:
    sim = VirtualPrinter()
    printer = memory_printer(sim, health, nursery, reply_timeout=2.0)
    sim.mute_replies(1000)
    with trio.fail_after(DEADLINE), pytest.raises(PrinterOffline, match="no reply to status request DLE EOT 1"):
        await printer.run()
    assert trio.current_time() == pytest.approx(4.0)  # two tries of reply_timeout
    assert health.get("printer").state == "offline" and not printer.connected


async def test_paper_low_is_visible_but_printing_goes_on(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery
) -> None:
    sim.set_paper("near-end")
    printer = tcp_printer(sim, health)
    with trio.fail_after(DEADLINE):
        await nursery.start(printer.run)
        printer.print_receipt(make_record())
        await printer.drained()
    assert health.get("printer").state == "paper-low"
    assert printer.status is not None and printer.status.paper_near_end
    assert sim.text().count("[QR: S001-1-42]") == 1


async def test_a_full_queue_drops_and_says_so(health: HealthBoard) -> None:
    printer = ReceiptPrinter("printer", TcpTransport("127.0.0.1", 9), health, capacity=2)
    for i in range(3):
        printer.submit(f"j{i}", b"x\n")
    assert printer.pending == ["j0", "j1"]
    assert health.get("printer").last_error == "queue full, dropped j2"


async def test_a_receipt_that_cannot_be_encoded_never_reaches_the_lane(health: HealthBoard) -> None:
    printer = ReceiptPrinter("printer", TcpTransport("127.0.0.1", 9), health, profile="TM-NOPE")
    assert printer.print_receipt(make_record()) is None
    assert "unknown printer profile" in health.get("printer").last_error
    assert printer.queue_depth == 0
