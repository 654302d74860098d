import json
import subprocess
import sys

import pytest

from brandkit import cpu_memory

# Each case runs in its own Python: glibc's settings are the process's, and a fresh one starts at glibc's defaults.
ROUNDS = """
import json, resource, sys, torch
from brandkit import cpu_memory

BLOCK = 16 * 2**20  # floats: 64 MB, over glibc's largest mmap threshold

def faults_of_a_round() -> int:
    # a step's activations in small: a big tensor filled, freed, and asked for again
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(BLOCK)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def resident_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20

if sys.argv[1] == "kept":
    with cpu_memory.freed_memory_kept() as kept:
        faults = [faults_of_a_round() for _ in range(12)]
        inside = resident_mb()
    after = resident_mb()
else:
    kept, faults, inside, after = False, [faults_of_a_round() for _ in range(12)], 0.0, 0.0
print(json.dumps({"kept": kept, "faults": faults, "inside_mb": inside, "after_mb": after}))
"""

PAGES = 16 * 2**20 * 4 // 4096


def rounds(case: str) -> dict:
    done = subprocess.run([sys.executable, "-c", ROUNDS, case], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(cpu_memory._glibc() is None, reason="glibc's allocator only")
def test_inside_the_block_freed_memory_is_reused_and_given_back_on_leaving():
    default, kept = rounds("default"), rounds("kept")
    # glibc's defaults: every round maps the tensor afresh and faults each of its pages in
    assert all(f > PAGES // 2 for f in default["faults"][-4:])
    # kept: once the heap has grown to hold it, a round takes (almost) no page faults
    assert kept["kept"] and sum(kept["faults"][-4:]) < PAGES // 20
    # leaving the block gives the kept memory back to the system
    assert kept["after_mb"] < kept["inside_mb"] - 48
