"""Properties of the RFC 9162 Merkle log: inclusion and consistency proofs verify, and tampering is caught."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from civic.merkle import (
    EMPTY_ROOT,
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

PROFILE = settings(max_examples=200, deadline=None)
# Distinct entries: with two equal leaves a proof for one is, correctly, also a proof for the other.
entries = st.lists(st.binary(max_size=24), min_size=1, max_size=80, unique=True)


def log_of(leaves: list[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for entry in leaves:
        store.append(leaf_hash(entry))
    return store


def flip(value: bytes, position: int) -> bytes:
    """`value` with one bit of one byte changed."""
    changed = bytearray(value)
    changed[position % len(changed)] ^= 0x01
    return bytes(changed)


@PROFILE
@given(entries, st.data())
def test_every_inclusion_proof_verifies_against_the_root_of_its_size(leaves: list[bytes], data: st.DataObject) -> None:
    store = log_of(leaves)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    head = root(store, size)
    assert head == root_from_leaf_hashes([leaf_hash(entry) for entry in leaves[:size]])
    for index in range(size):
        proof = inclusion_proof(store, index, size)
        assert verify_inclusion(leaf_hash(leaves[index]), index, size, proof, head), (index, size)


@PROFILE
@given(entries, st.data())
def test_an_inclusion_proof_fails_for_another_leaf_index_or_root(leaves: list[bytes], data: st.DataObject) -> None:
    store = log_of(leaves)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(store, index, size)
    head = root(store, size)
    leaf = leaf_hash(leaves[index])
    assert verify_inclusion(leaf, index, size, proof, head)

    other_entry = data.draw(st.binary(max_size=24).filter(lambda entry: entry != leaves[index]), label="other leaf")
    assert not verify_inclusion(leaf_hash(other_entry), index, size, proof, head)
    if size > 1:
        other_index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other index")
        assert not verify_inclusion(leaf, other_index, size, proof, head)
    assert not verify_inclusion(leaf, index, size, proof, flip(head, data.draw(st.integers(0, 31), label="byte")))
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1), label="proof element")
        tampered = [*proof[:position], flip(proof[position], 0), *proof[position + 1 :]]
        assert not verify_inclusion(leaf, index, size, tampered, head)
        assert not verify_inclusion(leaf, index, size, proof[:-1], head)  # a truncated path
    assert not verify_inclusion(leaf, index, size, [*proof, head], head)  # a path longer than the tree is high


@PROFILE
@given(entries, st.data())
def test_consistency_proofs_between_any_two_sizes_verify(leaves: list[bytes], data: st.DataObject) -> None:
    store = log_of(leaves)
    new_size = data.draw(st.integers(0, len(leaves)), label="new size")
    old_size = data.draw(st.integers(0, new_size), label="old size")
    proof = consistency_proof(store, old_size, new_size)
    old_root, new_root = root(store, old_size), root(store, new_size)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    if old_size in (0, new_size):
        assert proof == []
    if old_size == 0:
        assert old_root == EMPTY_ROOT


@PROFILE
@given(entries, st.data())
def test_a_tampered_consistency_proof_or_root_fails(leaves: list[bytes], data: st.DataObject) -> None:
    store = log_of(leaves)
    new_size = data.draw(st.integers(1, len(leaves)), label="new size")
    old_size = data.draw(st.integers(0, new_size - 1), label="old size")
    proof = consistency_proof(store, old_size, new_size)
    old_root, new_root = root(store, old_size), root(store, new_size)
    byte = data.draw(st.integers(0, 31), label="byte")
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)

    assert not verify_consistency(old_size, new_size, flip(old_root, byte), new_root, proof)
    if old_size:
        # Every tree extends the empty one (there is nothing to prove), so only a non-empty old head binds the new.
        assert not verify_consistency(old_size, new_size, old_root, flip(new_root, byte), proof)
    assert not verify_consistency(new_size, old_size, new_root, old_root, proof)  # sizes the wrong way round
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1), label="proof element")
        tampered = [*proof[:position], flip(proof[position], byte), *proof[position + 1 :]]
        assert not verify_consistency(old_size, new_size, old_root, new_root, tampered)
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
    # A log that rewrote one of the old entries cannot prove itself an extension of the old head.
    if old_size:
        rewritten = list(leaves)
        changed = data.draw(st.integers(0, old_size - 1), label="rewritten entry")
        rewritten[changed] = rewritten[changed] + b"!"
        forked = log_of(rewritten)
        forked_proof = consistency_proof(forked, old_size, new_size)
        assert not verify_consistency(old_size, new_size, old_root, root(forked, new_size), forked_proof)
