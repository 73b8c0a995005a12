"""Chaos runs: a store selling through a link proxy that misbehaves on purpose while both nodes are killed."""
