"""The processes a benchmark starts, and how a benchmark script runs.

Nodes (`node_argv`, with the store's config from `store_toml`) and a script's own helper servers are
started with `--ready-file` and waited for until they say where they listen (`Fleet.start`); one that
dies mid-run is reported with its log (`check_running`). Client worker processes say `ready`, wait for
`go` on stdin and answer one JSON line (`run_workers`, `wait_for_go`, `answer`). Every process started
through a `Fleet` is stopped when the benchmark ends, however it ends (`Fleet.stop_all` in a
`finally`). `run_script` turns a benchmark's main coroutine into the script's exit status.

How the scripts import this module and bench/measurements.py
-------------------------------------------------------------
The scripts are run as `.venv/bin/python bench/<script>.py`, and Python then puts bench/ first on
sys.path. Two things follow. bench/devices.py would be found as `devices` before the project's devices
package (storenode.lanes.lane imports it, so sync.py is hit as well as devices.py). And bench/ is not a
package the editable install knows (it maps only the project's packages; tests/ neither), so nothing
in it imports as `bench.<module>`. So every script starts, before any other import, with

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: see bench/processes.py

The repository root is then searched first: `devices` is the package again, `devtools` imports, and
bench/ (no __init__.py) is a namespace package whose modules import as `bench.processes` and
`bench.measurements`. A script's helper processes run the script itself (`sys.executable SCRIPT
--worker ...`), so they take the same path. bench/ stays on sys.path behind the root, but nothing in
it is imported by its bare name (`import measurements` would load a second copy of the module, and a
script named like a package, such as devices.py, would shadow it).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec
import trio
from trio_websocket import WebSocketRequest, serve_websocket

from devtools import enrolment
from devtools.certificates import provision
from runtime.ready import wait_ready_file, write_ready_file
from storenode.config import load_config

START_TIMEOUT = 60.0  # bound on a node starting (until its ready file says where), and on a worker's wait for go
STOP_TIMEOUT = 5.0  # after SIGTERM, before SIGKILL

T = TypeVar("T")
R = TypeVar("R")
Main = Callable[[argparse.Namespace], Awaitable[int]]


class BenchError(Exception):
    """The benchmark could not run as intended (a node did not start, a till could not log in...), or
    what it checks afterwards is wrong."""


def tail(path: Path, chars: int = 2000) -> str:
    """The end of a log, for an error message."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def node_argv(*args: str) -> list[str]:
    """`storepos ARGS` as a benchmark runs a node: this interpreter, logging at WARNING."""
    return [sys.executable, "-m", "storepos", "--log-level", "WARNING", *args]


def store_toml(
    store: str,
    name: str,
    currency: str,
    lanes: Iterable[int],
    *,
    settings: str = "",
    central: str | None = None,
    ca: str = "",
    batch: int | None = None,
) -> str:
    """The store.toml of a benchmark's store node: its data in store-data/ beside the file, the till
    gateway on a free localhost port (the ready file says which), `settings` (more top-level lines),
    and with `central` its link to central (`ca`: what a wss:// central is checked against, see
    `central_tls`; a ws:// central is allowed as insecure; `batch`: events per EventBatch; else the
    node's default)."""
    text = (
        f'store = "{store}"\nname = "{name}"\ncurrency = "{currency}"\nlanes = [{", ".join(map(str, lanes))}]\n'
        f'data_dir = "store-data"\n{settings}\n[gateway]\nhost = "127.0.0.1"\nport = 0\n'
    )
    if central is not None:
        text += f'\n[central]\nurl = "{central}"\n' + (f'ca = "{ca}"\n' if ca else "")
        text += ("insecure = true\n" if central.startswith("ws://") else "") + (
            "" if batch is None else f"batch = {batch}\n"
        )
    return text


def central_tls(folder: Path, *, plain: bool = False) -> tuple[list[str], str]:
    """A benchmark central's TLS: a chain CA and central's certificate for 127.0.0.1 in `folder`
    (where its central.db is, as `storepos central init` would put them), or plain ws. Returns the
    extra `central run` arguments and the CA a store trusts ("" for plain)."""
    if plain:
        return ["--insecure"], ""
    return [], str(provision(folder))


async def stop(proc: trio.Process, grace: float = STOP_TIMEOUT) -> None:
    """Terminate, then kill if it does not go within `grace` seconds; shielded, so it runs during a cancel."""
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            proc.terminate()
            with trio.move_on_after(grace):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


class Fleet:
    """Every process a benchmark starts: each one's output goes to a log file, and `stop_all` stops
    whatever is still registered, newest first."""

    def __init__(self, stop_timeout: float = STOP_TIMEOUT) -> None:
        self.stop_timeout = stop_timeout
        self.running: list[trio.Process] = []

    async def spawn(self, argv: list[str], log: Path, cwd: Path, *, pipes: bool = False) -> trio.Process:
        """Start `argv` in `cwd`, stderr (and stdout, unless `pipes`) appended to `log`."""
        if "run" in argv and "--config" in argv and argv[argv.index("run") - 1] == "store":
            # its tills enrolled and its certificate from a chain they trust, as an operator sets a store up
            config = load_config(cwd / argv[argv.index("--config") + 1])
            enrolment.prepare(config, None if config.tills.insecure else enrolment.process_chain(cwd))
        sink: IO[bytes] = log.open("ab")
        try:
            proc = await trio.lowlevel.open_process(
                argv,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else sink,
                stderr=sink,
                cwd=cwd,
            )
        finally:
            sink.close()
        self.running.append(proc)
        return proc

    async def start(self, name: str, argv: list[str], cwd: Path) -> tuple[trio.Process, str]:
        """Start a node (or helper server) with `--ready-file NAME.ready`, logging to NAME.log in `cwd`;
        returns once it says where it listens, with that url."""
        ready = cwd / f"{name}.ready"
        ready.unlink(missing_ok=True)
        proc = await self.spawn([*argv, "--ready-file", str(ready)], cwd / f"{name}.log", cwd)
        return proc, await self.ready(name, proc, cwd)

    async def ready(self, name: str, proc: trio.Process, cwd: Path) -> str:
        """Wait until `proc`, started with `--ready-file NAME.ready` in `cwd`, writes its url there; a
        process that exits or takes longer than START_TIMEOUT is stopped and reported with its log."""
        try:
            with trio.fail_after(START_TIMEOUT):
                info = await wait_ready_file(cwd / f"{name}.ready", alive=lambda: proc.poll() is None)
        except (RuntimeError, trio.TooSlowError):
            await self.stop(proc)
            raise BenchError(f"{name} did not start; its log ends:\n{tail(cwd / f'{name}.log')}") from None
        except BaseException:
            await self.stop(proc)
            raise
        return str(info["url"])

    async def stop(self, proc: trio.Process) -> None:
        await stop(proc, self.stop_timeout)
        if proc in self.running:
            self.running.remove(proc)

    async def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            await self.stop(proc)


def check_running(nodes: dict[str, trio.Process], folder: Path, during: str = "the run") -> None:
    """A node that died explains a failure better than the timeout it causes: raise with its log
    (NAME.log in `folder`) when one of `nodes` has exited."""
    for name, proc in nodes.items():
        if proc.poll() is not None:
            log = tail(folder / f"{name}.log")
            raise BenchError(f"the {name} node exited (code {proc.returncode}) during {during}; its log ends:\n{log}")


async def serve_websocket_ready(handler: Callable[[WebSocketRequest], Awaitable[None]], ready_file: Path) -> None:
    """A helper server's side of `--ready-file`: serve `handler` on a free localhost port, write the
    ws:// url to `ready_file`, and serve until cancelled."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        write_ready_file(ready_file, url=f"ws://127.0.0.1:{server.port}")


# ---------------------------------------------------------------------------------------------
# Client workers: a script spreads its clients over processes that run the script itself.
# ---------------------------------------------------------------------------------------------


def round_robin(items: Sequence[T], parts: int) -> list[list[T]]:
    """`items` dealt over at most `parts` non-empty lists."""
    return [chunk for chunk in (list(items[i::parts]) for i in range(parts)) if chunk]


class LineReader:
    """Lines from a worker's stdout."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def line(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(1 << 20)
            if not chunk:
                raise BenchError("a client worker exited early (see its log in the work folder)")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


async def run_workers(
    fleet: Fleet,
    script: Path,
    flag: str,
    specs: Sequence[Any],
    answer_type: type[R],
    cwd: Path,
    log_name: str,
    on_go: Callable[[], Awaitable[Any]],
    *,
    ready_timeout: float,
    answer_timeout: float,
) -> list[R]:
    """One worker per spec, `script FLAG SPEC` (the spec as JSON) in `cwd` with its output in
    LOG_NAME-<i>.log: wait until every one says `ready`, await `on_go()`, tell them all `go`, and return
    what each answers (`answer_type`, in the order of `specs`). The workers are stopped however it ends."""
    procs: list[trio.Process] = []
    try:
        for i, spec in enumerate(specs):
            argv = [sys.executable, str(script), flag, msgspec.json.encode(spec).decode()]
            procs.append(await fleet.spawn(argv, cwd / f"{log_name}-{i}.log", cwd, pipes=True))
        readers = [LineReader(p.stdout) for p in procs]  # type: ignore[arg-type]
        with trio.fail_after(ready_timeout):
            for reader in readers:
                if (line := await reader.line()) != "ready":
                    raise BenchError(f"worker said {line!r} instead of ready")
        await on_go()
        for p in procs:
            await p.stdin.send_all(b"go\n")  # type: ignore[union-attr]
        with trio.fail_after(answer_timeout):
            return [msgspec.json.decode(await reader.line(), type=answer_type) for reader in readers]
    finally:
        for p in procs:
            await fleet.stop(p)


async def wait_for_go() -> None:
    """In a worker, once its clients are ready: say `ready` on stdout, then wait for `go` on stdin."""
    print("ready", flush=True)
    with trio.fail_after(START_TIMEOUT):
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    if line.strip() != "go":
        raise BenchError(f"worker expected 'go', got {line!r}")


def answer(result: Any) -> None:
    """In a worker: its result as one JSON line on stdout (what `run_workers` decodes)."""
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# Running a script.
# ---------------------------------------------------------------------------------------------


def leaves(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> list[BaseException]:
    """The exceptions of `kinds` in `exc`, looking inside (nested) exception groups as Trio raises them."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner, kinds)]
    return [exc] if isinstance(exc, kinds) else []


async def _until_signal(main: Main, args: argparse.Namespace) -> int:
    """`main(args)`, stopped by SIGTERM or SIGHUP as by Ctrl-C, with everything it started."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    raise BenchError(f"stopped by {signal.Signals(signum).name}")

            nursery.start_soon(stop_on_signal)
            code = await main(args)
            nursery.cancel_scope.cancel()
    return code


def run_script(name: str, main: Main, args: argparse.Namespace, *, stop_on_signals: bool = False) -> int:
    """Run a benchmark's main coroutine under Trio and give the script's exit status: its own, 130 on
    Ctrl-C, 2 when it failed with a BenchError or a timeout (each said on stderr as `NAME: ...`); any
    other exception propagates with its traceback. `stop_on_signals`: SIGTERM and SIGHUP too end it
    as Ctrl-C does, through its `finally` blocks."""
    try:
        if stop_on_signals:
            return trio.run(_until_signal, main, args)
        return trio.run(main, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        failures = leaves(exc, (BenchError, trio.TooSlowError))
        if not failures:
            raise
        for failure in failures:
            print(f"{name}: {'timed out' if isinstance(failure, trio.TooSlowError) else failure}", file=sys.stderr)
        return 2
