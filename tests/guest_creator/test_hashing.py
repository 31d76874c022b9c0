"""The v1 hash: C fast path and pure-Python fallback agree, chunking does not matter."""
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from guest_creator import hashing

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402


def test_fast_path_is_built():
    # `pip install -e .` with a C compiler builds guest_creator._v3hash (setup.py)
    assert hashing.FAST


def test_big_bin_has_bits_above_32():
    big = corpus.make_data("data/big.bin", "rand", 1052675, None)
    assert hashing.hash_bytes(big) == 0x100000CF2795
    assert hashing.update_py(0, 0, big) == 0x100000CF2795


def test_small_known_values():
    assert hashing.hash_bytes(b"") == 0
    assert hashing.hash_bytes(b"A") == 0x41
    assert hashing.hash_bytes(b"\x01\x02") == ((0x01 << 4) + 0x02 + 1)


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 15, 16, 17, 100, 4097, 70001])
def test_fast_equals_fallback(size):
    data = random.Random(size).randbytes(size)
    assert hashing.update(0, 0, data) == hashing.update_py(0, 0, data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 40)))
def test_fast_equals_fallback_from_any_state(data, state, pos):
    # any 64-bit state (bits 28-31 of a real state are clear, the C path must not assume more)
    state &= ~0xF0000000
    assert hashing.update(state, pos, data) == hashing.update_py(state, pos, data)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 200), max_size=20))
def test_chunking_does_not_change_the_hash(data, cuts):
    hasher, pos = hashing.Hasher(), 0
    for cut in cuts:
        hasher.update(data[pos:pos + cut])
        pos += cut
    hasher.update(data[pos:])
    assert hasher.value == hashing.update_py(0, 0, data)


def test_build_without_the_c_helper_gives_the_same_image(tmp_path, monkeypatch):
    from guest_creator import build_image
    (tmp_path / "d.bin").write_bytes(random.Random(5).randbytes(300_000))
    (tmp_path / "c.xml").write_bytes(b'<vm><files><file id="d" filename="d.bin"/></files></vm>')
    build_image(tmp_path / "c.xml", tmp_path / "fast.dat")
    monkeypatch.setattr(hashing, "_update_c", None)
    monkeypatch.setattr(hashing, "FAST", False)
    build_image(tmp_path / "c.xml", tmp_path / "slow.dat")
    assert (tmp_path / "fast.dat").read_bytes() == (tmp_path / "slow.dat").read_bytes()
