"""The TLS set-up as an operator meets it: `central run` without `central init` refuses to start,
`--insecure` serves plain ws with a warning at every start, a store.toml with ws:// is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.processes import STORE_TOML, Processes, storepos

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


async def test_central_run_without_its_certificate_exits_2_and_says_what_to_run(tmp_path: Path) -> None:
    db = tmp_path / "central.db"
    run = await storepos("central", "run", "--db", str(db), "--port", "0")
    assert run.returncode == 2
    assert f"run `storepos central init --db {db}` first" in run.stderr.decode()


async def test_central_run_insecure_serves_plain_ws_and_warns_each_start(tmp_path: Path, procs: Processes) -> None:
    db = str(tmp_path / "central.db")
    for start in ("first", "second"):
        proc, url = await procs.start(start, "central", "run", "--db", db, "--port", "0", "--insecure")
        assert url.startswith("ws://")
        proc.terminate()
        await proc.wait()
        assert "WARNING" in (log := (tmp_path / f"{start}.log").read_text()) and "--insecure" in log


async def test_a_store_config_with_plain_ws_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="ws://127.0.0.1:8700", ca=""))
    run = await storepos("store", "run", "--config", str(config))
    assert run.returncode == 2 and "set central.insecure = true" in run.stderr.decode()
