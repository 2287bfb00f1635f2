"""RFC 9162 (Certificate Transparency v2) Merkle log: hashing, stored subtrees, proofs and their verifiers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def canonical_json(obj: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace: one byte string per value, so its hash is stable.

    Floats are refused (their text form differs between languages and versions), and so are
    non-string keys (json would turn 1 and "1" into the same key).
    """
    _check_canonical(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _check_canonical(obj: Any) -> None:
    if isinstance(obj, float):
        raise TypeError("floats are not allowed in canonical JSON")
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError("canonical JSON keys must be strings")
            _check_canonical(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            _check_canonical(value)
    elif obj is not None and not isinstance(obj, str | int):
        raise TypeError(f"{type(obj).__name__} is not allowed in canonical JSON")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH (RFC 9162 §2.1.1) of a whole list of leaf hashes, level by level.

    Carrying an unpaired last node up unchanged builds exactly the RFC's tree (split at the largest
    power of two below n), with n - 1 hashes and no recursion.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class NodeStore(Protocol):
    """Where a log keeps its hashes: only perfect subtrees, addressed by (level, index)."""

    def get(self, level: int, index: int) -> bytes:
        """The root of the perfect subtree of 2**level leaves that starts at leaf index * 2**level."""
        ...

    def size(self) -> int:
        """How many leaves the log holds."""
        ...


def new_nodes_after_append(store: NodeStore, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """The (level, index, hash) rows that appending `leaf` (a leaf hash) completes, leaf row first.

    A database-backed store inserts exactly these rows; nothing stored before changes.
    """
    if not _is_hash(leaf):
        raise ValueError(f"a leaf hash is {HASH_BYTES} bytes; hash entries with leaf_hash first")
    index = store.size()
    level = 0
    current = leaf
    rows = [(0, index, current)]
    # A node with an odd index is a right child: its parent is complete now.
    while index & 1:
        current = node_hash(store.get(level, index - 1), current)
        index >>= 1
        level += 1
        rows.append((level, index, current))
    return rows


class MemoryNodeStore:
    """A NodeStore in lists: levels[level][index]; amortised one node hash per append."""

    def __init__(self) -> None:
        self.levels: list[list[bytes]] = [[]]

    def size(self) -> int:
        return len(self.levels[0])

    def get(self, level: int, index: int) -> bytes:
        # Explicit bounds: a negative list index would silently return a node from the other end.
        if level < 0 or level >= len(self.levels) or index < 0 or index >= len(self.levels[level]):
            raise KeyError(f"no complete subtree at level {level}, index {index}")
        return self.levels[level][index]

    def append(self, leaf: bytes) -> int:
        """Store a leaf hash and the subtrees it completes; returns the leaf's index."""
        index = self.size()
        for level, _, node in new_nodes_after_append(self, leaf):
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].append(node)
        return index


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162's split: the largest power of two strictly smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(store: NodeStore, start: int, end: int) -> bytes:
    """MTH of leaves [start, end) from at most log2(end - start) + 1 stored perfect subtrees.

    The range must be a subtree of some RFC 9162 tree, i.e. start a multiple of the smallest power
    of two ≥ end - start; every range a proof or a root needs is one. Other ranges would need
    hashing leaf by leaf, so they raise ValueError rather than quietly costing O(n).
    """
    count = end - start
    if start < 0 or count < 1 or end > store.size():
        raise ValueError(f"leaves [{start}, {end}) are not in a log of {store.size()} leaves")
    if start % (1 << (count - 1).bit_length()):
        raise ValueError(f"leaves [{start}, {end}) are not an RFC 9162 subtree")
    # Binary digits of the count, largest first: the perfect subtrees from left to right.
    parts = []
    position = start
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            parts.append(store.get(level, position >> level))
            position += 1 << level
    result = parts[-1]
    for left in reversed(parts[:-1]):
        result = node_hash(left, result)
    return result


def root(store: NodeStore, size: int) -> bytes:
    """The tree head at any size up to the store's: historic roots come from the same nodes."""
    if size == 0:
        return EMPTY_ROOT
    return subtree_root(store, 0, size)


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf's sibling first."""
    if not 0 <= index < size <= store.size():
        raise ValueError(f"no leaf {index} in a tree of {size} leaves (log holds {store.size()})")
    path = []
    start, end = 0, size
    # Walk down from the root; the RFC's recursion emits these siblings in reverse order.
    while end - start > 1:
        middle = start + _largest_power_of_two_below(end - start)
        if index < middle:
            path.append(subtree_root(store, middle, end))
            end = middle
        else:
            path.append(subtree_root(store, start, middle))
            start = middle
    path.reverse()
    return path


def consistency_proof(store: NodeStore, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1); empty when old_size is 0 or equal to new_size."""
    if not 0 <= old_size <= new_size <= store.size():
        raise ValueError(f"no consistency proof from {old_size} to {new_size} (log holds {store.size()})")
    if old_size in (0, new_size):
        return []
    proof = []
    start, end = 0, new_size
    # `whole` is SUBPROOF's b: true while the old tree is itself a node whose root the verifier has.
    whole = True
    while end != old_size:
        middle = start + _largest_power_of_two_below(end - start)
        if old_size <= middle:
            proof.append(subtree_root(store, middle, end))
            end = middle
        else:
            proof.append(subtree_root(store, start, middle))
            start = middle
            whole = False
    if not whole:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's right part, which the verifier can't name.
        proof.append(subtree_root(store, start, end))
    proof.reverse()
    return proof


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def _is_proof(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, bytes | str)
        and all(_is_hash(element) for element in value)
    )


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` place leaf hash `leaf` at `index` of the tree `root_hash` of `size`?

    Needs only hashes; returns False, never raises, on malformed input. `size` must come from the
    same signed checkpoint as `root_hash`: a proof for a smaller tree can also fit a larger size.
    """
    if not (_is_hash(leaf) and _is_hash(root_hash) and _is_size(index) and _is_size(size)) or index >= size:
        return False
    if not _is_proof(proof):
        return False
    fn, sn = index, size - 1
    result = leaf
    for element in proof:
        if sn == 0:
            return False  # longer than the path to the root
        if fn & 1 or fn == sn:
            result = node_hash(element, result)
            # Levels where this node has no right sibling are skipped: the RFC promotes it unchanged.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, element)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree `new_root` of `new_size` an append-only extension of `old_root`?

    Sizes that are equal need an empty proof and equal roots. From size 0 the RFC defines no proof;
    we accept only an empty one and require old_root to be EMPTY_ROOT, the one root a tree of size
    0 can have, so a checkpoint of size 0 with any other root is refused. Returns False, never
    raises, on malformed input.
    """
    if not (_is_size(old_size) and _is_size(new_size) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    if not _is_proof(proof) or old_size > new_size:
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    # A power-of-two old tree is a complete subtree of the new one: the proof leaves its root out.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_result = new_result = path[0]
    for element in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_result = node_hash(element, old_result)
            new_result = node_hash(element, new_result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_result = node_hash(new_result, element)
        fn >>= 1
        sn >>= 1
    return sn == 0 and old_result == old_root and new_result == new_root
