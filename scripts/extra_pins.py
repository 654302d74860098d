"""Print the requirements of one pyproject extra, optionally only those starting with a prefix.

    python scripts/extra_pins.py gpu unsloth      ->  unsloth==2026.10.9 unsloth_zoo==2026.10.9

Used by the Makefile so that pyproject.toml stays the one list of dependencies.
"""

import re
import sys
from pathlib import Path

extra, prefix = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
try:
    import tomllib

    requirements = tomllib.loads(text)["project"]["optional-dependencies"][extra]
except ImportError:  # Python 3.10: read the one-line list directly
    requirements = re.findall(r'"([^"]+)"', re.search(rf"^{extra} = \[(.*)\]$", text, re.M).group(1))
print(" ".join(r for r in requirements if r.startswith(prefix)))
