"""Whether two peers can talk, and what to say when they cannot.

Frames evolve within a version by appending fields with defaults (protocol.frames), so two peers of
one version always understand each other and two of different versions are assumed not to: the peer
that notices refuses with an `incompatible_version` error naming both versions, so the operator
reads at once which node to upgrade instead of chasing undecodable frames. One rule for the till
gateway and for the store <-> central link; a node that learns to speak several versions changes
`compatible` alone.
"""

from __future__ import annotations

INCOMPATIBLE_VERSION = "incompatible_version"  # the error code of the refusal


def compatible(ours: int, theirs: int) -> bool:
    return ours == theirs


def shown(text: str, limit: int = 64) -> str:
    """Text a peer gave (its name, its refusal), as we may log it or send it back: printable and
    bounded, so an escape sequence or a megabyte of name reaches no log or terminal."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return clean + ("..." if len(text) > limit else "")


def mismatch(protocol: str, us: str, ours: int, them: str, theirs: int) -> str:
    """The refusal's text, the same wherever it is read (the refusing side's log, the refused side's).
    `them` names the peer as it named itself: shown bounded and printable."""
    return (
        f"{shown(them)} speaks {protocol} protocol version {theirs} but {us} speaks version {ours}: "
        f"they cannot work together until one is upgraded to match the other"
    )
