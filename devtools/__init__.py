"""Tools for developing storepos, shared by the test suite and the benchmarks: starting real `storepos`
processes (processes.py) and the fault-injection chaos harness with its misbehaving link proxy (chaos/).

Why a package of its own: tests/ and bench/ both need these, and neither may import the other (a
benchmark that imports the test suite breaks when a test is moved; a test that imports a benchmark
script drags in its sys.path tricks). They are not part of the product either: a store or central never
starts processes of itself or breaks its own links on purpose, so they do not belong in storepos/ or
storenode/. devtools/ is an installed package (pyproject's packages list) that depends only on the
product, so tests, bench scripts and one-off scripts import it the same way.
"""
