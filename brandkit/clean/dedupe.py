"""Duplicates across the corpus: exact (same text ignoring case and spacing) and near (MinHash LSH), earliest copy kept."""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from typing import Any

from ..config import CleanConfig

# --------------------------------------------------------------------------- 8. duplicates

def content_key(text: str) -> str:
    """What counts as the same document: identical text ignoring case and spacing."""
    return hashlib.sha256(re.sub(r"\s+", " ", text).strip().lower().encode()).hexdigest()


def shingles(text: str, size: int) -> list[bytes]:
    words = re.findall(r"\w+", text.lower())
    if len(words) <= size:
        return [" ".join(words).encode()]
    return [" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)]


MINHASH_SCHEME = "affine32"


def _crc32(data: bytes) -> int:
    return zlib.crc32(data)


@functools.lru_cache(maxsize=4)
def _permutations(num_perm: int):
    """The seeded hash permutations, made once: creating them is most of a small MinHash's cost."""
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=1, scheme=MINHASH_SCHEME).permutations


def minhash_signature(text: str, num_perm: int, size: int) -> bytes:
    """A MinHash signature (datasketch) of a text's word shingles; crc32 keeps it fast and stable."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, hashfunc=_crc32, seed=1, permutations=_permutations(num_perm),
                      scheme=MINHASH_SCHEME)
    minhash.update_batch(shingles(text, size))
    return minhash.hashvalues.astype("<u8").tobytes()


def earliest_first(dates: list[str]) -> list[int]:
    """Row order for keeping "the earliest copy": by date where known, then as collected."""
    keys = [str(d or "").replace("T", " ")[:19] or "9999" for d in dates]
    return sorted(range(len(keys)), key=lambda i: (keys[i], i))


def exact_duplicates(texts: list[str], ids: list[str], alive: list[bool], order: list[int]) -> dict[int, tuple[str, str]]:
    """Row index -> (id of the kept copy, reason) for every later copy of an identical text."""
    first: dict[str, str] = {}
    drops = {}
    for index in order:
        if not alive[index]:
            continue
        key = content_key(texts[index])
        if key in first:
            drops[index] = (first[key], "exact duplicate")
        else:
            first[key] = ids[index]
    return drops


def near_duplicates(signatures: list[bytes], ids: list[str], alive: list[bool], order: list[int],
                    config: CleanConfig) -> dict[int, tuple[str, str]]:
    """MinHash LSH: each document is checked against those kept before it (linear in documents)."""
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    # Candidates come from a looser band setting (few missed pairs); the estimate decides.
    lsh = MinHashLSH(threshold=max(0.5, config.near_dup_threshold - 0.15), num_perm=config.num_perm,
                     weights=(0.3, 0.7))
    kept: dict[str, Any] = {}
    drops = {}
    for index in order:
        if not alive[index] or not signatures[index]:
            continue
        minhash = MinHash(num_perm=config.num_perm, hashvalues=np.frombuffer(signatures[index], dtype="<u8"),
                          seed=1, permutations=_permutations(config.num_perm), scheme=MINHASH_SCHEME)
        best, best_sim = None, 0.0
        for candidate in lsh.query(minhash):
            similarity = minhash.jaccard(kept[candidate])
            if similarity >= config.near_dup_threshold and similarity > best_sim:
                best, best_sim = candidate, similarity
        if best is not None:
            drops[index] = (best, f"near duplicate (estimated similarity {best_sim:.2f})")
        else:
            lsh.insert(ids[index], minhash)
            kept[ids[index]] = minhash
    return drops
