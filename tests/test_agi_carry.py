"""Values carried on the channel (hotline.agi.carry): exactly what urlencode writes."""

from __future__ import annotations

import random
from urllib.parse import urlencode

from hotline.agi import carry


def test_carried_text_is_what_urlencode_writes() -> None:
    alphabet = 'aZ09_.-~ +%&=;/:,"\\\n\x00яЖё€😀'
    rng = random.Random(20261205)
    for _ in range(2000):
        fields = {
            "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 6))): "".join(
                rng.choice(alphabet) for _ in range(rng.randrange(0, 10))
            )
            for _ in range(rng.randrange(0, 4))
        }
        text = carry.encode(fields)
        assert text == urlencode([("v", carry.FORMAT), *fields.items()])
        assert carry.decode(text) == fields


def test_a_checkpoint_with_russian_text_reads_back() -> None:
    fields = {"menu": "88001000001", "node": "rate", "var.topic": "общий вопрос"}
    text = carry.encode(fields)
    assert " " not in text and text.isascii()
    assert carry.decode(text) == fields
