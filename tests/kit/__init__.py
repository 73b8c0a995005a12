"""The test kit: everything more than one test file needs, in one place, named for what it holds.

Test files import from here and from nowhere else in tests/ (never from another test file, never from
conftest.py, which only declares fixtures built from the kit), so a test can be moved, renamed or
deleted without breaking another. Real-process launching and the chaos proxy are not here but in
devtools/, because the benchmarks need them too and bench/ must not import tests/.

    nodes.py     store and central configs and nodes in-process (T0, make_store_config, start_store ...)
    certificates.py  the session's TLS chain: the CA stores trust, the certificate centrals serve
    waits.py     waiting on what a test watches: a till's pushes, a link, a journal in another process
    payments.py  the demo catalogue's codes, the ZVT simulator, paying through a till, gift card balances
    journal.py   a store's journal read back as another process would
    catalog.py   master-data writes at central (as an import commits them) and chunk reads as a store pulls
    printing.py  a sale record, a receipt layout and a printer on memory streams for device tests
    devices.py   the devices supervisor as device actor tests run it (quick retries, never giving up)
    lanes.py     a lane actor alone: real SQLite, a fake card terminal and a fake central link
"""
