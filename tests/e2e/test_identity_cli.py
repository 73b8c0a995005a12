"""Enrolment, rotation and revocation as operators do them: `storepos` commands and real node processes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from devtools.certificates import provision
from devtools.processes import STORE_TOML, Processes, storepos
from tests.kit import certificates

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


async def until_output(args: list[str], wanted: str, seconds: float = 20) -> str:
    """Run a command again until its output shows `wanted` (the nodes are other processes: poll them)."""
    with trio.fail_after(seconds):
        while True:
            done = await storepos(*args)
            text = done.stdout.decode() + done.stderr.decode()
            if wanted in text:
                return text
            await trio.sleep(0.2)


async def test_enrol_connect_rotate_and_revoke_a_store(tmp_path: Path, procs: Processes) -> None:
    db = str(tmp_path / "central.db")
    refused = await storepos("central", "store", "enroll", "S\u202e1", "--db", db)
    assert refused.returncode == 1 and "is not a store id" in refused.stderr.decode()

    enrolled = await storepos("central", "store", "enroll", "E2E", "--valid-hours", "2", "--db", db)
    assert enrolled.returncode == 0, enrolled.stderr.decode()
    token = enrolled.stdout.decode().splitlines()[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)

    ca = provision(tmp_path, certificates.chain())  # central's TLS material, as central init leaves it
    _, central_url = await procs.start("central", "central", "run", "--db", db, "--port", "0")
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central=central_url, ca=ca))
    init = await storepos("store", "init", "--config", str(config), "--token", token)
    assert init.returncode == 0, init.stderr.decode()
    key = re.search(r"store E2E: key ([0-9a-f]{16}) made", init.stdout.decode())
    assert key is not None
    folder = tmp_path / "store-data" / "identity"
    assert (folder / "store.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "enrolment.token").stat().st_mode & 0o777 == 0o600

    store, store_url = await procs.start("store", "store", "run", "--config", str(config))
    status = ["store", "status", "--config", str(config), "--url", store_url]
    await until_output(status, "central link online")
    listing = await until_output(["central", "store", "list", "--db", db], f"key {key[1]}")
    assert re.search(rf"E2E\s+enrolled key {key[1]} \(1 in all\)", listing), listing
    assert not (folder / "enrolment.token").exists()  # spent: deleted once central welcomed it

    rotate = await storepos("store", "rotate-key", "--config", str(config))
    assert rotate.returncode == 0, rotate.stderr.decode()
    new = re.search(r"new key ([0-9a-f]{16}) prepared", rotate.stdout.decode())
    assert new is not None
    procs.kill9(store)
    await store.wait()
    store, store_url = await procs.start("store-2", "store", "run", "--config", str(config))
    await until_output(["central", "store", "list", "--db", db], f"key {new[1]} (2 in all)")
    assert (folder / "retired" / f"{key[1]}.key").exists() and not (folder / "next.key").exists()

    revoked = await storepos("central", "store", "revoke", "E2E", "--db", db)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout.decode()
    status = ["store", "status", "--config", str(config), "--url", store_url]
    text = await until_output(status, "refused by central (revoked)")
    assert "central link offline" in text
    again = await storepos("central", "store", "enroll", "E2E", "--db", db)
    assert again.returncode == 1 and "revoked" in again.stderr.decode()
