"""Merkle log: published RFC 6962 vectors, every proof of small trees, random larger trees, bad input."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civic.merkle import (
    EMPTY_ROOT,
    MemoryNodeStore,
    canonical_json,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    new_nodes_after_append,
    node_hash,
    root,
    root_from_leaf_hashes,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 / Certificate Transparency reference tree, copied from transparency-dev/merkle
# `proof/verify_test.go` (commit 02194e9afb6c1d95b5381350007963aa70fff472).
# Leaves are hex entry data; ROOTS[n - 1] is the root of the first n leaves.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# (leaf index, tree size, proof); the Go file numbers leaves from 1, these are 0-based indexes.
INCLUSION_VECTORS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof), same source.
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SMALL = 64
LARGE = 3000


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


# The RFC 9162 §2.1 definitions written out recursively, as independent references for the fast code.
def reference_mth(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(reference_mth(hashes[:k]), reference_mth(hashes[k:]))


def reference_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return [*reference_path(m, hashes[:k]), reference_mth(hashes[k:])]
    return [*reference_path(m - k, hashes[k:]), reference_mth(hashes[:k])]


def reference_subproof(m: int, hashes: Sequence[bytes], whole: bool) -> list[bytes]:
    if m == len(hashes):
        return [] if whole else [reference_mth(hashes)]
    k = _split(len(hashes))
    if m <= k:
        return [*reference_subproof(m, hashes[:k], whole), reference_mth(hashes[k:])]
    return [*reference_subproof(m - k, hashes[k:], False), reference_mth(hashes[:k])]


def flip(hash_: bytes) -> bytes:
    return bytes([hash_[0] ^ 0x10]) + hash_[1:]


@cache
def hashes_of(count: int) -> tuple[bytes, ...]:
    return tuple(leaf_hash(f"ballot {i}".encode()) for i in range(count))


@cache
def store_of(count: int) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for hash_ in hashes_of(count):
        store.append(hash_)
    return store


@cache
def vector_store() -> MemoryNodeStore:
    store = MemoryNodeStore()
    for data in LEAVES:
        store.append(leaf_hash(data))
    return store


def test_hashes_follow_rfc_prefixes() -> None:
    assert EMPTY_ROOT.hex() == EMPTY_ROOT_HEX
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


def test_roots_of_every_prefix_match_the_published_vectors() -> None:
    store = vector_store()
    hashes = [leaf_hash(data) for data in LEAVES]
    assert root(store, 0) == EMPTY_ROOT == root_from_leaf_hashes([])
    for size in range(1, len(LEAVES) + 1):
        assert root(store, size) == ROOTS[size - 1], size
        assert root_from_leaf_hashes(hashes[:size]) == ROOTS[size - 1], size


@pytest.mark.parametrize(("index", "size", "proof_hex"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_the_published_vectors(index: int, size: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    leaf = leaf_hash(LEAVES[index])
    assert inclusion_proof(vector_store(), index, size) == proof
    assert verify_inclusion(leaf, index, size, proof, ROOTS[size - 1])
    # The probes transparency-dev/merkle runs against these vectors.
    assert not verify_inclusion(leaf, index, size * 2, proof, ROOTS[size - 1])
    assert not verify_inclusion(leaf, index, size // 2, proof, ROOTS[size - 1])
    assert not verify_inclusion(leaf, index ^ 2, size, proof, ROOTS[size - 1])
    assert not verify_inclusion(leaf, index, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(leaf, index, size, [*proof, ROOTS[size - 1]], ROOTS[size - 1])
    assert not verify_inclusion(leaf, index, size, [ROOTS[size - 1], *proof], ROOTS[size - 1])
    assert not verify_inclusion(leaf, index, size, proof[:-1], ROOTS[size - 1])


@pytest.mark.parametrize(("old_size", "new_size", "proof_hex"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_the_published_vectors(old_size: int, new_size: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    old_root, new_root = ROOTS[old_size - 1], ROOTS[new_size - 1]
    assert consistency_proof(vector_store(), old_size, new_size) == proof
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    if proof:
        assert not verify_consistency(old_size, new_size, new_root, old_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, new_root, [])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, old_root])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [proof[0], *proof])
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
        assert not verify_consistency(old_size, new_size * 2, old_root, new_root, proof)


def test_every_inclusion_proof_of_small_trees_verifies_and_tampering_fails() -> None:
    hashes = hashes_of(SMALL)
    store = store_of(SMALL)
    roots = [root(store, size) for size in range(SMALL + 1)]
    for size in range(1, SMALL + 1):
        for index in range(size):
            proof = inclusion_proof(store, index, size)
            assert proof == reference_path(index, hashes[:size])
            leaf = hashes[index]
            assert verify_inclusion(leaf, index, size, proof, roots[size]), (index, size)
            assert not verify_inclusion(flip(leaf), index, size, proof, roots[size])
            assert not verify_inclusion(leaf, index, size, proof, flip(roots[size]))
            for position in range(len(proof)):
                tampered = [*proof[:position], flip(proof[position]), *proof[position + 1 :]]
                assert not verify_inclusion(leaf, index, size, tampered, roots[size])
            for other in {index - 1, index + 1, index ^ 2} - {index}:
                if 0 <= other < size:
                    assert not verify_inclusion(leaf, other, size, proof, roots[size]), (index, other, size)
            # A wrong size is checked with its own root: a checkpoint signs size and root together.
            for other in {size - 1, size + 1, size * 2, size // 2} - {size}:
                if index < other <= SMALL:
                    assert not verify_inclusion(leaf, index, other, proof, roots[other]), (index, size, other)


def test_every_consistency_proof_of_small_trees_verifies_and_tampering_fails() -> None:
    hashes = hashes_of(SMALL)
    store = store_of(SMALL)
    roots = [root(store, size) for size in range(SMALL + 1)]
    for new_size in range(1, SMALL + 1):
        for old_size in range(1, new_size + 1):
            proof = consistency_proof(store, old_size, new_size)
            assert proof == reference_subproof(old_size, hashes[:new_size], True)
            old_root, new_root = roots[old_size], roots[new_size]
            assert verify_consistency(old_size, new_size, old_root, new_root, proof), (old_size, new_size)
            assert not verify_consistency(old_size, new_size, flip(old_root), new_root, proof)
            assert not verify_consistency(old_size, new_size, old_root, flip(new_root), proof)
            for position in range(len(proof)):
                tampered = [*proof[:position], flip(proof[position]), *proof[position + 1 :]]
                assert not verify_consistency(old_size, new_size, old_root, new_root, tampered)
            if old_size < new_size:
                assert not verify_consistency(new_size, old_size, new_root, old_root, proof)
                assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, new_root])
                assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
                # The old tree of another size: the proof is about a different prefix.
                for other in {old_size - 1, old_size + 1} - {0, new_size}:
                    assert not verify_consistency(other, new_size, roots[other], new_root, proof), (
                        old_size,
                        other,
                        new_size,
                    )


def test_historic_roots_equal_roots_of_the_leaf_prefix() -> None:
    hashes = hashes_of(SMALL)
    store = store_of(SMALL)
    for size in range(SMALL + 1):
        assert root(store, size) == root_from_leaf_hashes(hashes[:size]) == reference_mth(hashes[:size])


class RowStore:
    """What a database store would hold: one row per (level, index), inserted and never updated."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], bytes] = {}
        self.leaves = 0

    def get(self, level: int, index: int) -> bytes:
        return self.rows[(level, index)]

    def size(self) -> int:
        return self.leaves

    def append(self, leaf: bytes) -> None:
        for level, index, hash_ in new_nodes_after_append(self, leaf):
            assert (level, index) not in self.rows  # an append only ever adds rows
            self.rows[(level, index)] = hash_
        self.leaves += 1


def test_rows_of_new_nodes_after_append_rebuild_an_identical_store() -> None:
    hashes = hashes_of(300)
    memory = store_of(300)
    rows = RowStore()
    for size, hash_ in enumerate(hashes, start=1):
        rows.append(hash_)
        # Exactly the perfect subtrees: floor(n / 2**level) at each level, 2n - popcount(n) in all.
        assert len(rows.rows) == 2 * size - size.bit_count()
        assert root(rows, size) == root(memory, size)
    for (level, index), hash_ in rows.rows.items():
        assert memory.get(level, index) == hash_
    assert inclusion_proof(rows, 123, 300) == inclusion_proof(memory, 123, 300)
    assert consistency_proof(rows, 77, 300) == consistency_proof(memory, 77, 300)


def test_append_returns_the_leaf_index() -> None:
    store = MemoryNodeStore()
    assert [store.append(leaf_hash(bytes([i]))) for i in range(5)] == [0, 1, 2, 3, 4]
    assert store.size() == 5
    with pytest.raises(KeyError):
        store.get(0, -1)  # never Python's from-the-end indexing
    with pytest.raises(KeyError):
        store.get(2, 1)  # leaves 4..7 are not complete
    with pytest.raises(ValueError):
        store.append(b"not a leaf hash")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_trees_up_to_a_few_thousand_leaves(data: st.DataObject) -> None:
    hashes = hashes_of(LARGE)
    store = store_of(LARGE)
    size = data.draw(st.integers(1, LARGE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old_size = data.draw(st.integers(1, size), label="old_size")
    size_root = root(store, size)
    assert size_root == root_from_leaf_hashes(hashes[:size])
    proof = inclusion_proof(store, index, size)
    assert verify_inclusion(hashes[index], index, size, proof, size_root)
    assert not verify_inclusion(flip(hashes[index]), index, size, proof, size_root)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1), label="tampered element")
        assert not verify_inclusion(
            hashes[index], index, size, [*proof[:position], flip(proof[position]), *proof[position + 1 :]], size_root
        )
    old_root = root(store, old_size)
    consistency = consistency_proof(store, old_size, size)
    assert verify_consistency(old_size, size, old_root, size_root, consistency)
    if old_size < size:
        assert not verify_consistency(old_size, size, flip(old_root), size_root, consistency)
        assert not verify_consistency(old_size, size, old_root, flip(size_root), consistency)


def test_subtree_root_refuses_ranges_that_are_not_rfc_subtrees() -> None:
    store = store_of(SMALL)
    assert subtree_root(store, 8, 13) == reference_mth(hashes_of(SMALL)[8:13])
    for start, end in ((1, 3), (4, 9), (0, 0), (5, 4), (60, 65), (-1, 0)):
        with pytest.raises(ValueError):
            subtree_root(store, start, end)


def test_proof_requests_outside_the_log_raise() -> None:
    store = store_of(SMALL)
    for index, size in ((0, 0), (5, 5), (-1, 4), (0, SMALL + 1)):
        with pytest.raises(ValueError):
            inclusion_proof(store, index, size)
    for old_size, new_size in ((5, 4), (-1, 3), (3, SMALL + 1)):
        with pytest.raises(ValueError):
            consistency_proof(store, old_size, new_size)
    assert consistency_proof(store, 0, 10) == consistency_proof(store, 10, 10) == []


def test_verifiers_return_false_on_malformed_input() -> None:
    store = store_of(8)
    leaf, root8 = hashes_of(8)[3], root(store, 8)
    proof = inclusion_proof(store, 3, 8)
    assert verify_inclusion(leaf, 3, 8, proof, root8)
    malformed: list[tuple[object, ...]] = [
        (leaf, 8, 8, proof, root8),  # index == size
        (leaf, -1, 8, proof, root8),
        (leaf, 3, 0, [], EMPTY_ROOT),
        (leaf, True, 8, proof, root8),
        (leaf[:31], 3, 8, proof, root8),
        (leaf, 3, 8, proof, root8[:31]),
        (leaf, 3, 8, [*proof[:2], proof[2][:31]], root8),
        (leaf, 3, 8, [*proof[:2], proof[2].hex()], root8),
        (leaf, 3, 8, None, root8),
        (leaf, 3, 8, b"".join(proof), root8),
        (leaf, 3, 8, [], root8),
        (leaf, 3, 8, [*proof, proof[0]], root8),
        (leaf, "3", 8, proof, root8),
    ]
    for arguments in malformed:
        assert verify_inclusion(*arguments) is False, arguments  # type: ignore[arg-type]

    root5 = root(store, 5)
    consistency = consistency_proof(store, 5, 8)
    assert verify_consistency(5, 8, root5, root8, consistency)
    bad_consistency: list[tuple[object, ...]] = [
        (8, 5, root8, root5, consistency),
        (-1, 8, root5, root8, consistency),
        (5, 8, root5, root8, None),
        (5, 8, root5, root8, [c[:31] for c in consistency]),
        (5, 8, root5[:31], root8, consistency),
        (5, 8, root5, root8, []),
        (5, 5.0, root5, root8, consistency),
        (5, 8, root5, root8, [*consistency, root8]),
    ]
    for arguments in bad_consistency:
        assert verify_consistency(*arguments) is False, arguments  # type: ignore[arg-type]


def test_consistency_edge_sizes() -> None:
    store = store_of(8)
    root5, root8 = root(store, 5), root(store, 8)
    # Equal sizes: empty proof and equal roots, nothing else.
    assert verify_consistency(5, 5, root5, root5, [])
    assert not verify_consistency(5, 5, root5, root8, [])
    assert not verify_consistency(5, 5, root5, root5, [root5])
    # From size 0: an empty proof, and the old root must be the empty tree's.
    assert verify_consistency(0, 8, EMPTY_ROOT, root8, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 8, root5, root8, [])
    assert not verify_consistency(0, 8, EMPTY_ROOT, root8, [root8])
    assert not verify_consistency(0, 0, EMPTY_ROOT, root8, [])


def test_canonical_json() -> None:
    ballot = {"time": "2026-05-01T09:30:00Z", "poll": "p-1", "receipt": "r-9", "option": "찬성", "n": [1, True, None]}
    expected = '{"n":[1,true,null],"option":"찬성","poll":"p-1","receipt":"r-9","time":"2026-05-01T09:30:00Z"}'
    assert canonical_json(ballot) == expected.encode()
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1})
    for bad in ({"x": 1.0}, [{"y": [0.5]}], {1: "a"}, {"x": b"bytes"}, {"x": float("nan")}):
        with pytest.raises(TypeError):
            canonical_json(bad)
