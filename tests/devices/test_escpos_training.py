"""A training sale's paper receipt (issue 14, Deliver 7): a TRAINING / ÖVNING banner at its head and a
NOT A RECEIPT line at its foot, in the printer's code page, so it cannot pass for a real receipt."""

from __future__ import annotations

import msgspec

from devices.escpos import encode_receipt
from devices.escpos_decode import decode
from tests.kit.printing import LAYOUT, make_record


def test_a_training_receipt_says_so_on_paper_and_a_real_one_does_not() -> None:
    real = make_record()
    training = msgspec.structs.replace(real, training=True)
    printed = decode(encode_receipt(LAYOUT, training)).splitlines()
    assert "TRAINING / ÖVNING" in printed[0]
    assert any("*** TRAINING / ÖVNING - NOT A RECEIPT ***" in line for line in printed)
    assert "ÖVNING" not in decode(encode_receipt(LAYOUT, real))
