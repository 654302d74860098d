"""The Colab install: its restart and retry logic in process, then its exact pip commands run on Colab's stack.

The simulation builds a virtualenv holding Colab's versions (tests below name the one that cannot
be had here), copies the project there as the setup cell's `git clone` would, runs brandkit/colab.py's
install in it, and checks that torch and ipywidgets are untouched, that brandkit's and unsloth's own
requirements are met, and that brandkit and the GPU backend's imports resolve. There is no GPU, so
nothing runs CUDA.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brandkit import colab

REPO = Path(__file__).resolve().parents[1]

# torch: PyPI's plain torch is a CUDA build of several GB, and this machine's registry serves torch's
# CPU wheel only for 2.13.0 (not Colab's 2.11): the simulation uses 2.13.0. What it checks does not
# depend on the number: that the install leaves the torch it finds alone. torchvision is the release
# built for that torch, as on Colab.
SIM_TORCH = {"torch": "2.13.0", "torchvision": "0.28.0"}
# The rest of Colab's image that brandkit and unsloth touch, at Colab's versions where they matter.
COLAB_EXTRAS = ("numpy", "pandas", "matplotlib", "scikit-learn", "ipython", "ipykernel", "pyyaml", "tqdm",
                "requests", "packaging", "safetensors", "tokenizers", "sentencepiece", "protobuf", "pillow")


def test_pip_commands_keep_torch_and_ipywidgets_out_of_the_resolver():
    steps = colab.pip_commands(REPO)
    assert [s[:3] for s in steps] == [["install", "--quiet", "--no-deps"], ["install", "--quiet", "-e"],
                                      ["install", "--quiet", "--no-deps"]]
    resolved = steps[1][4:]  # the only step pip resolves dependencies for
    assert not {colab.name(r) for r in resolved} & {"torch", "torchvision", "ipywidgets", "xformers",
                                                     "bitsandbytes", "unsloth", "unsloth-zoo", "triton"}
    assert {colab.name(r) for r in steps[2][3:]} == {"unsloth", "unsloth-zoo"}
    assert all(any(op in r for op in ("==", ">=")) for r in steps[0][3:]), "a version pip checks, even with --no-deps"
    assert all("==" in r for r in steps[2][3:]) and any(r.startswith("bitsandbytes==") for r in steps[0])
    assert set(steps[2][3:]) <= set(colab.gpu_pins(REPO)), "unsloth's pins come from pyproject's gpu extra"


def test_restart_is_asked_for_only_when_an_imported_package_changed():
    import yaml  # noqa: F401  (imported: a changed pyyaml needs a restart)

    before = {"pyyaml": "6.0", "surely-not-imported-dist": "1.0", "torch": "2.11.0"}
    assert colab.imported_packages_changed(before, {**before, "pyyaml": "6.1"}) == ["pyyaml"]
    assert colab.imported_packages_changed(before, {**before, "surely-not-imported-dist": "2.0"}) == []
    assert colab.imported_packages_changed(before, {**before, "brand-new-dist": "1.0"}) == []  # new, not upgraded


def test_a_failed_install_is_not_skipped_next_time(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    assert not colab.already_installed(tmp_path)  # no marker: a clone without a finished install
    (tmp_path / colab.MARKER).write_text(json.dumps({"fingerprint": "from-other-commands"}))
    assert not colab.already_installed(tmp_path)
    (tmp_path / colab.MARKER).write_text("{broken")
    assert not colab.already_installed(tmp_path)


def colab_image(venv: Path) -> Path:
    """A fresh copy of a virtualenv holding Colab's stack, built once per recipe in the cache folder.

    Building it downloads about a gigabyte (pip's cache does not keep it here) and takes minutes;
    the install under test always runs on a new copy, so nothing it does carries over.
    """
    stack = {**colab.COLAB_STACK, **SIM_TORCH}
    recipe = json.dumps([sys.version, sorted(stack.items()), COLAB_EXTRAS])
    cache = Path(os.environ.get("BRANDKIT_CACHE") or Path.home() / ".cache" / "brandkit")
    image = cache / f"colab-image-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    if not (image / "brandkit-colab-image.json").exists():
        partial = image.with_name(image.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(partial)], check=True)
        # --no-compile: the image is a stand-in, imported only in part (pip compiling all of torch takes a minute)
        pip(partial / "bin" / "python", "--no-compile", *(f"{k}=={v}" for k, v in stack.items()), *COLAB_EXTRAS)
        (partial / "brandkit-colab-image.json").write_text(recipe)
        shutil.rmtree(image, ignore_errors=True)
        partial.rename(image)  # the venv's paths are relative to where it is: a renamed or copied one works
    subprocess.run(["cp", "-a", str(image), str(venv)], check=True)  # twice as fast as shutil.copytree (16 s, 2 GB)
    return venv


def pip(python: Path, *arguments: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--only-binary", ":all:", *arguments],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def versions(python: Path, *names: str) -> dict[str, str]:
    """Installed versions without a local label (torch's "2.13.0+cpu" is "2.13.0")."""
    code = ("import importlib.metadata as m, json, sys\n"
            "print(json.dumps({n: m.version(n).split('+')[0] for n in sys.argv[1:]}))")
    done = subprocess.run([str(python), "-c", code, *names], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


@pytest.mark.colab
@pytest.mark.timeout(2400)  # the first run also builds the Colab image (minutes; cached after)
def test_install_keeps_colabs_stack_and_meets_unsloths_pins(tmp_path):
    started = time.perf_counter()
    python = colab_image(tmp_path / "colab-venv") / "bin" / "python"
    stack = {**colab.COLAB_STACK, **SIM_TORCH}
    colab_versions = versions(python, *stack)
    exact = versions_or_none(python, *colab.KEEP)  # with the local label: a CUDA torch must not replace the CPU one
    assert colab_versions == stack and "trl" not in versions_or_none(python, "trl", "bitsandbytes", "unsloth")
    print(f"Colab's stack in {time.perf_counter() - started:.0f} s")

    # the setup cell's clone: the project's files (tracked, and new ones not yet committed) as in this working tree
    project = tmp_path / "content" / "brandkit"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
                           check=True, capture_output=True, text=True)
    for relative in files.stdout.splitlines():
        if (REPO / relative).is_file():
            (project / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, project / relative)
    install = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('colab', sys.argv[1]); "
               "colab = importlib.util.module_from_spec(spec); spec.loader.exec_module(colab); "
               "print('restart needed' if colab.install(sys.argv[2]) else 'no restart')")
    done = subprocess.run([str(python), "-c", install, str(project / "brandkit" / "colab.py"), str(project)],
                          capture_output=True, text=True)
    print(done.stdout, done.stderr[-3000:])
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"installed in {time.perf_counter() - started:.0f} s")

    after = versions(python, *stack, "trl", "unsloth", "unsloth_zoo", "bitsandbytes")
    assert versions_or_none(python, *colab.KEEP) == exact, "the install replaced torch, torchvision or ipywidgets"
    pins = dict(line.split("==") for line in colab.gpu_pins(REPO) if "==" in line)
    assert after["unsloth"] == pins["unsloth"] and after["unsloth_zoo"] == pins["unsloth_zoo"]
    assert after["transformers"] == "5.17.0" and after["trl"] == "1.14.2"  # brandkit's pins, over Colab's
    check = subprocess.run([str(python), str(project / "brandkit" / "colab.py"), "check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    again = subprocess.run([str(python), "-c", install, str(project / "brandkit" / "colab.py"), str(project)],
                           capture_output=True, text=True)
    assert again.returncode == 0 and "nothing to do" in again.stdout

    imports = ("import brandkit, brandkit.unsloth_backend, brandkit.train, brandkit.export, brandkit.widgets\n"
               "import unsloth\nfrom unsloth import FastLanguageModel\n"
               "from unsloth.chat_templates import train_on_responses_only, get_chat_template\n"
               "import trl, peft, bitsandbytes, ipywidgets\nfrom trl import SFTTrainer\n"
               "print(brandkit.__file__, ipywidgets.__version__)")
    # This image's torchvision is PyPI's CUDA build beside the CPU torch wheel (Colab's two match), so
    # its compiled ops cannot load here and transformers would fail on it. Now that the install is shown
    # to keep it, it leaves this copy; brandkit never imports torchvision.
    subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "torchvision"], check=True)
    done = subprocess.run([str(python), "-c", imports], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(project) in done.stdout and "7.7.1" in done.stdout

    print(f"Colab simulation: {time.perf_counter() - started:.0f} s in all")


def versions_or_none(python: Path, *names: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\nout = {}\nfor n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))")
    done = subprocess.run([str(python), "-c", code, *names], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def test_colab_upload_saves_into_the_folder_only(tmp_path):
    from brandkit.course import colab_upload

    saved = colab_upload(tmp_path / "uploads", upload=lambda: {"../../sent.mbox": b"From a@b\n", "posts.xml": b"<rss/>"})
    assert sorted(saved) == [str(tmp_path / "uploads" / "posts.xml"), str(tmp_path / "uploads" / "sent.mbox")]
    assert (tmp_path / "uploads" / "sent.mbox").read_bytes() == b"From a@b\n"


def test_the_run_folder_goes_on_drive_on_colab_only(tmp_path, monkeypatch):
    from brandkit import course

    monkeypatch.delenv("BRANDKIT_BRAND", raising=False)
    assert course.drive_run_dir("smoke", "ember-coffee") == "runs/course-smoke"  # not Colab: the local folder
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    monkeypatch.setattr(course, "DRIVE", str(tmp_path / "drive"))
    mounted = []
    path = course.drive_run_dir("full", "data/mine", mount=lambda where: (mounted.append(where),
                                                                          os.makedirs(f"{where}/MyDrive")))
    assert mounted == [str(tmp_path / "drive")] and path == str(tmp_path / "drive" / "MyDrive" / "brandkit-runs" / "mine-full")
    assert os.path.isdir(path) and course.drive_run_dir("full", "data/mine", mount=mounted.append) == path  # mounted once


def test_full_mode_checkpoints_and_validates_every_tenth_of_the_run(monkeypatch):
    from brandkit.course import course_config

    full = course_config("full", "runs/x").train
    assert full.save_steps == full.eval_steps == 0.1  # transformers reads a value under 1 as a share of the run
    smoke = course_config("smoke", "runs/x").train
    assert smoke.max_steps // smoke.eval_steps >= 3, "the overfitting warning needs three validation points"
