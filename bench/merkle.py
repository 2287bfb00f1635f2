"""The vote log's Merkle tree in memory: build, inclusion and consistency proofs, offline export check.

Targets from the votes feature: an inclusion proof of a 1,000,000-leaf log in ≤ 1 ms, and offline
verification of a 100,000-ballot export in ≤ 10 s.
"""

from __future__ import annotations

import json
import random
import resource
import time
import uuid
from typing import Any

from bench.common import percentiles, write_result
from civic.checkpoints import (
    Checkpoint,
    NoteError,
    checkpoint_timestamp,
    generate_private_key_b64,
    load_private_key,
    open_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
)
from civic.merkle import (
    MemoryNodeStore,
    canonical_json,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

LEAVES = 1_000_000
SAMPLES = 10_000
EXPORT_BALLOTS = 100_000


def timed_us(samples: list[float], started_ns: int) -> None:
    samples.append((time.perf_counter_ns() - started_ns) / 1000)


def build(hashes: list[bytes]) -> tuple[MemoryNodeStore, float]:
    store = MemoryNodeStore()
    started = time.perf_counter()
    for hash_ in hashes:
        store.append(hash_)
    return store, time.perf_counter() - started


def proofs(store: MemoryNodeStore, hashes: list[bytes], rng: random.Random) -> dict[str, Any]:
    size = store.size()
    tree_root = root(store, size)
    make: list[float] = []
    check: list[float] = []
    lengths = set()
    for index in rng.sample(range(size), SAMPLES):
        started = time.perf_counter_ns()
        proof = inclusion_proof(store, index, size)
        timed_us(make, started)
        started = time.perf_counter_ns()
        ok = verify_inclusion(hashes[index], index, size, proof, tree_root)
        timed_us(check, started)
        assert ok, index
        lengths.add(len(proof))
    consistency_make: list[float] = []
    consistency_check: list[float] = []
    roots_us: list[float] = []
    for _ in range(SAMPLES):
        old_size = rng.randrange(1, size)
        started = time.perf_counter_ns()
        old_root = root(store, old_size)
        timed_us(roots_us, started)
        started = time.perf_counter_ns()
        proof = consistency_proof(store, old_size, size)
        timed_us(consistency_make, started)
        started = time.perf_counter_ns()
        ok = verify_consistency(old_size, size, old_root, tree_root, proof)
        timed_us(consistency_check, started)
        assert ok, old_size
    return {
        "tree_size": size,
        "samples": SAMPLES,
        "inclusion_proof_lengths": sorted(lengths),
        "inclusion_proof_us": percentiles(make),
        "verify_inclusion_us": percentiles(check),
        "historic_root_us": percentiles(roots_us),
        "consistency_proof_us": percentiles(consistency_make),
        "verify_consistency_us": percentiles(consistency_check),
    }


def export_text(count: int, rng: random.Random) -> str:
    """What a poll's public export would hold: every ballot leaf, in log order, and the signed checkpoint."""
    key = load_private_key(generate_private_key_b64())
    ballots = [
        {
            "poll_id": "poll-2026-0001",
            "receipt_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "option": rng.choice(["찬성", "반대", "기권"]),
            "time": f"2026-05-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
        }
        for i in range(count)
    ]
    tree_root = root_from_leaf_hashes([leaf_hash(canonical_json(ballot)) for ballot in ballots])
    statement = leaf_hash(b"poll statement")
    checkpoint = Checkpoint("seoul-civic/polls/poll-2026-0001", count, tree_root, statement, checkpoint_timestamp())
    return json.dumps(
        {"verifier_key": str(verifier_key(key)), "checkpoint": sign_checkpoint(key, checkpoint), "ballots": ballots}
    )


def verify_export(text: str) -> bool:
    """An auditor's offline check: parse, re-hash every ballot, recompute the root, check the signed note."""
    export = json.loads(text)
    try:
        checkpoint = open_checkpoint(export["checkpoint"], parse_verifier_key(export["verifier_key"]))
    except NoteError:
        return False
    hashes = [leaf_hash(canonical_json(ballot)) for ballot in export["ballots"]]
    return len(hashes) == checkpoint.size and root_from_leaf_hashes(hashes) == checkpoint.root_hash


def main() -> None:
    rng = random.Random(9162)
    started = time.perf_counter()
    hashes = [leaf_hash(i.to_bytes(8, "big")) for i in range(LEAVES)]
    leaf_seconds = time.perf_counter() - started
    store, build_seconds = build(hashes)
    measured = proofs(store, hashes, rng)

    started = time.perf_counter()
    root_from_leaf_hashes(hashes[:EXPORT_BALLOTS])
    root_seconds = time.perf_counter() - started
    text = export_text(EXPORT_BALLOTS, rng)
    started = time.perf_counter()
    assert verify_export(text)
    export_seconds = time.perf_counter() - started

    write_result(
        "merkle",
        {
            "leaves": LEAVES,
            "leaf_hashes_seconds": round(leaf_seconds, 2),
            "build_seconds": round(build_seconds, 2),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            **measured,
            "root_from_leaf_hashes_100k_seconds": round(root_seconds, 3),
            "export_ballots": EXPORT_BALLOTS,
            "export_mb": round(len(text.encode()) / 2**20, 1),
            "export_verify_seconds": round(export_seconds, 2),
            "target_inclusion_proof_ms": 1,
            "target_export_verify_seconds": 10,
        },
    )


if __name__ == "__main__":
    main()
