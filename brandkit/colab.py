"""Installing brandkit on Colab without breaking Colab: the one list of pip commands, and the checks after.

Colab's image comes with its own CUDA build of torch and with ipywidgets 7.7.1, which its front end
needs. A resolver run over unsloth's dependencies can replace that torch (xformers wheels pin an
exact torch; unsloth issues 1026 and 1150), so, like Unsloth's own notebooks, the install goes in
three steps: the CUDA-side packages with --no-deps, then the pure-Python ones normally (brandkit
itself among them; its requirements are all met by Colab's torch and ipywidgets), then unsloth and
unsloth_zoo with --no-deps.

This file uses the standard library only and is loaded by path in the setup cell, before brandkit's
dependencies are installed (importing the `brandkit` package first would import PyYAML's and, worse,
could import a package that the install then upgrades). tests/test_colab.py runs the same commands
in a virtualenv holding Colab's versions.

    python brandkit/colab.py install /content/brandkit     # what the setup cell runs, in-process
    python brandkit/colab.py commands /content/brandkit    # print the pip commands
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

# Colab's preinstalled stack (googlecolab/backend-info, August 2026): what the install must keep or meet.
COLAB_STACK = {"torch": "2.11.0", "transformers": "5.15.0", "accelerate": "1.14.0", "peft": "0.20.0",
               "datasets": "4.0.0", "ipywidgets": "7.7.1"}
# Never replaced by the install: Colab's CUDA torch (and the torchvision built for it) and its widgets.
KEEP = ("torch", "torchvision", "ipywidgets")
# CUDA-side packages, installed with --no-deps so that none of them can pull in another torch; at
# unsloth_zoo's own lower bounds, so that a version Colab already has is kept. (bitsandbytes, absent
# on Colab, comes pinned from the gpu extra.) xformers is skipped: its wheels pin one exact torch, and Unsloth falls back to PyTorch's own
# attention (SDPA) without it. triton comes with Colab's CUDA torch and is left as it is.
CUDA_SIDE = ("cut_cross_entropy>=25.1.1", "torchao>=0.13.0")
# unsloth's and unsloth_zoo's pure-Python requirements, installed normally (none of them needs torch).
PURE_PYTHON = ("tyro", "hf_transfer", "diffusers", "msgspec", "einops", "json5>=0.9.25", "structlog>=24.1.0",
               "typer>=0.19.0", "nest-asyncio", "certifi>=2026.10.19", "sentencepiece>=0.2.0", "protobuf",
               "psutil", "wheel>=0.42.0", "pillow", "regex", "rich", "pydantic", "click>=8.0",
               "huggingface_hub>=0.34.0")
# unsloth's requirements that the install leaves out on purpose (see CUDA_SIDE), and why.
LEFT_OUT = {"xformers": "pinned to one exact torch; Unsloth uses PyTorch's SDPA attention without it",
            "triton": "comes with Colab's CUDA build of torch",
            "triton-windows": "Windows only", "mlx": "Apple only", "mlx-lm": "Apple only", "mlx-vlm": "Apple only"}
MARKER = ".brandkit-colab-install.json"


def gpu_pins(project: str | Path) -> list[str]:
    """The gpu extra of the project's pyproject.toml (unsloth, unsloth_zoo, bitsandbytes): the pins live there."""
    text = (Path(project) / "pyproject.toml").read_text(encoding="utf-8")
    line = re.search(r"^gpu = \[(.*)\]$", text, re.M)
    if line is None:
        raise RuntimeError(f"{project}/pyproject.toml has no one-line `gpu = [...]` extra")
    return re.findall(r'"([^"]+)"', line.group(1))


def pip_commands(project: str | Path) -> list[list[str]]:
    """The pip arguments of each install step, in order (each run as `python -m pip ...`)."""
    pins = gpu_pins(project)
    unsloth = [p for p in pins if re.match(r"unsloth(_zoo)?\b", p)]
    cuda_side = [p for p in pins if p not in unsloth] + list(CUDA_SIDE)  # bitsandbytes from the gpu extra
    return [
        ["install", "--quiet", "--no-deps", *cuda_side],
        ["install", "--quiet", "-e", str(project), *PURE_PYTHON],
        ["install", "--quiet", "--no-deps", *unsloth],
    ]


def name(requirement: str) -> str:
    """The normalised distribution name of a requirement string ("Unsloth_Zoo>=1" -> "unsloth-zoo")."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", requirement.strip()).group(0)).lower()


def installed() -> dict[str, str]:
    """Every installed distribution and its version, by normalised name."""
    found = {}
    for dist in importlib.metadata.distributions():
        if dist.metadata["Name"]:
            found.setdefault(name(dist.metadata["Name"]), dist.version)
    return found


def unmet_requirements(packages=("brandkit", "unsloth", "unsloth_zoo")) -> list[str]:
    """Requirements of these packages that the environment does not meet (the LEFT_OUT ones excepted).

    Uses `packaging` (present wherever pip is) to evaluate markers and version specifiers.
    """
    from packaging.requirements import Requirement

    versions, problems = installed(), []
    for package in packages:
        try:
            requirements = importlib.metadata.requires(package) or []
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{package} is not installed")
            continue
        for line in requirements:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            have = versions.get(name(requirement.name))
            if have is None:
                if name(requirement.name) not in LEFT_OUT:
                    problems.append(f"{package} needs {requirement}, which is not installed")
            elif requirement.specifier and not requirement.specifier.contains(have, prereleases=True):
                problems.append(f"{package} needs {requirement}, {requirement.name} {have} is installed")
    return problems


def fingerprint(project: str | Path) -> str:
    return hashlib.sha256(json.dumps(pip_commands(project)).encode()).hexdigest()[:16]


def already_installed(project: str | Path) -> bool:
    """True when an earlier run of the same commands finished and its checks passed (a failed one re-runs)."""
    marker = Path(project) / MARKER
    try:
        saved = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return saved.get("fingerprint") == fingerprint(project) and not unmet_requirements()


def imported_packages_changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Distributions whose version the install changed and that this Python process has already imported."""
    changed = {dist for dist, version in after.items() if before.get(dist) not in (None, version)}
    if not changed:
        return []
    modules = importlib.metadata.packages_distributions()
    loaded = {top.split(".")[0] for top in list(sys.modules)}
    return sorted(dist for dist in changed
                  if any(module in loaded for module, dists in modules.items() if dist in {name(d) for d in dists}))


def install(project: str | Path = "/content/brandkit", python: str = sys.executable, say=print) -> bool:
    """Run the install steps (unless a previous run succeeded), check the result; True when a restart is needed.

    Raises RuntimeError, naming what is wrong, when a step fails or the checks do not pass; the marker
    is written only after they pass, so running the cell again retries the install.
    """
    project = Path(project)
    if already_installed(project):
        say("brandkit and Unsloth are installed (an earlier run of this cell); nothing to do.")
        return False
    (project / MARKER).unlink(missing_ok=True)
    before = installed()
    for number, arguments in enumerate(pip_commands(project), 1):
        say(f"[{number}/3] pip {' '.join(arguments)}")
        done = subprocess.run([python, "-m", "pip", *arguments], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip step {number} failed (run this cell again to retry):\n"
                               + (done.stderr or done.stdout)[-3000:])
    after = installed()
    replaced = [f"{dist} {before[dist]} -> {after.get(dist, 'removed')}" for dist in KEEP
                if dist in before and after.get(dist) != before[dist]]
    problems = unmet_requirements()
    if replaced or problems:
        raise RuntimeError("the install did not leave a working stack:\n- " + "\n- ".join(
            [f"replaced Colab's {r}" for r in replaced] + problems))
    (project / MARKER).write_text(json.dumps({"fingerprint": fingerprint(project)}), encoding="utf-8")
    restart = imported_packages_changed(before, after)
    if restart:
        say("Installed. Restart the runtime now (Runtime -> Restart session), then run this cell again: "
            f"these packages were already imported in an older version: {', '.join(restart)}.")
    else:
        say("Installed; no restart needed (nothing that was upgraded had been imported yet).")
    return bool(restart)


def main(argv: list[str]) -> int:
    command, project = argv[0], argv[1] if len(argv) > 1 else "/content/brandkit"
    if command == "commands":
        for arguments in pip_commands(project):
            print("pip", " ".join(arguments))
        return 0
    if command == "check":
        problems = unmet_requirements()
        print("\n".join(problems) or "all requirements met")
        return 1 if problems else 0
    if command == "install":
        install(project)
        return 0
    raise SystemExit(f"unknown command {command!r}: install, commands or check")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
