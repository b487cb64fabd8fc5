from collections import Counter
from collections.abc import Iterator

from campaigner.messages.codes import ALPHABET, random_code


def test_bytes_that_would_bias_the_alphabet_are_dropped() -> None:
    # 31 characters: 248 = 8 x 31 bytes map evenly; 248..255 would favour the first eight.
    reads: Iterator[bytes] = iter([bytes([255, 248, 0, 30]), bytes([31, 247, 251, 62])])
    asked: list[int] = []

    def source(size: int) -> bytes:
        asked.append(size)
        return next(reads)

    assert random_code(4, source) == ALPHABET[0] + ALPHABET[30] + ALPHABET[0] + ALPHABET[30]
    assert asked == [6, 6]


def test_every_byte_value_below_the_cut_gives_each_character_equally_often() -> None:
    values = bytes(range(256))
    counts = Counter(random_code(1, lambda size, b=bytes([v]): b) for v in values if v < 248)
    assert set(counts) == set(ALPHABET)
    assert set(counts.values()) == {8}
