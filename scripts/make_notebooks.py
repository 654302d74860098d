"""Write the six course notebooks in notebooks/ (outputs empty, Colab GPU metadata set).

    python scripts/make_notebooks.py

The notebooks are the product; this script is how maintainers keep their shared cells (setup,
checkpoints, the exercises' hidden answers) identical. Edit the text here, run it, commit both.

A cell is ("md", text), ("code", source) or ("answer", source): an exercise's worked answer, a code
cell whose source is hidden until the learner opens it (JupyterLab's `source_hidden`, Colab's form
view under its `# @title`). tests/test_notebooks.py runs every answer in smoke mode and checks it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
REPO = "brandkit-course/brandkit"  # where the Colab badge and the install cell fetch the project from

SETUP = '''# Setup. On Colab this installs brandkit and Unsloth without replacing Colab's own torch or ipywidgets
# (brandkit/colab.py holds the pip commands), and keeps the run folder on Google Drive; in JupyterLab
# it uses the environment `make setup` made.
import os, sys

MODE = os.environ.get("BRANDKIT_MODE", "auto")      # "full" ("auto") or "smoke" (6 steps); this notebook only
BRAND = os.environ.get("BRANDKIT_BRAND", "ember-coffee")  # a bundled sample, or the folder of your own brand kit
RUN_DIR = os.environ.get("BRANDKIT_RUN", "")        # empty: runs/course-smoke or runs/course-full (Drive on Colab)
USE_DRIVE = True                                    # Colab: the run folder on Google Drive (shared, survives a disconnect)

if "google.colab" in sys.modules:
    if not os.path.exists("/content/brandkit/pyproject.toml"):  # no clone yet, or a broken one
        !rm -rf /content/brandkit && git clone --quiet --depth 1 https://github.com/{repo} /content/brandkit
    import importlib.util
    _spec = importlib.util.spec_from_file_location("brandkit_colab", "/content/brandkit/brandkit/colab.py")
    _colab = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_colab)
    if _colab.install("/content/brandkit"):  # checks the result; a failed install is retried on the next run
        raise SystemExit("Restart the runtime now (Runtime > Restart session), then run this cell again.")
    %cd /content/brandkit
    if USE_DRIVE and not RUN_DIR:
        from brandkit.course import drive_run_dir
        RUN_DIR = drive_run_dir(MODE, BRAND)
elif os.path.basename(os.getcwd()) == "notebooks":
    os.chdir("..")  # run from the project folder, where data/ and runs/ live
'''.replace("{repo}", REPO)

START = '''from brandkit.course import course_config
from brandkit.pipeline import Run

config = course_config(MODE, RUN_DIR or None, BRAND)
run = Run(config)
print(f"mode: {'smoke (a few training steps: a rehearsal)' if config.train.max_steps > 0 else 'full'}; "
      f"base model: {config.train.base_model}")
print(f"brand: {run.brand.name}; run folder: {run.dir}")'''


def badge(name: str) -> str:
    url = f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{name}.ipynb"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def header(name: str, title: str, goals: list[str], t4: str, cpu: str, needs: str, intro: str) -> str:
    goal_lines = "\n".join(f"- {g}" for g in goals)
    return (f"{badge(name)}\n\n# {title}\n\n{intro}\n\n**By the end of this notebook you will be able to:**\n"
            f"{goal_lines}\n\n**Time:** {t4} on a Colab T4 GPU, {cpu} on a laptop CPU in smoke mode.  \n"
            f"**You need:** {needs}")


# Said once, in 00; the other notebooks link back to it (BACK).
MODES = """**Two modes, one switch.** *Full* mode (the default) fine-tunes a real model: on a laptop CPU,
SmolLM2-135M-Instruct, which brandkit installs offline, in a few minutes; on a Colab T4, Llama 3.2 1B
in 4 bits. *Smoke* mode trains the same small model for six steps only: a rehearsal that proves every
step works (it is what the tests run), not a result to judge.

**How the mode is chosen, for every notebook.** Each notebook decides in its own setup cell: the
`BRANDKIT_MODE` environment variable if it is set, else that cell's `MODE` line. So `MODE = "smoke"`
here changes *this notebook only*. For the whole course, either set the same `MODE` in every notebook
you open, or set the variable once before the notebooks start: `BRANDKIT_MODE=smoke make lab` in a
terminal, or `%env BRANDKIT_MODE=smoke` as the first cell of each Colab notebook (each runs on its own
machine). The two modes keep separate run folders (`runs/course-smoke` and `runs/course-full`; on Drive,
`<brand>-smoke` and `<brand>-full`): a notebook in the other mode does not see this one's work, and redoes
the earlier stages it needs."""

DRIVE = """**On Colab, your run lives on Google Drive.** Each Colab notebook runs on its own machine, whose disk
is wiped when it disconnects. With `USE_DRIVE = True` (the default) the setup cell mounts your Google
Drive (Colab asks for permission once) and keeps the run folder in
`MyDrive/brandkit-runs/<brand>-<mode>/`: the six notebooks share it, and training resumes from its last
checkpoint after a disconnect. Set `USE_DRIVE = False` to keep everything on the runtime's disk (then a
fresh runtime for 04 or 05 trains again).

**The install** leaves Colab's own torch and ipywidgets alone, checks what it installed, and asks you
to restart the runtime only when it upgraded a package that was already loaded."""

OWN_DATA = """**Your own data.** Make a folder such as `data/mine/` (on Colab, a folder on your Drive) holding a
`brand.yaml` and an `exports/` folder with your files: mailbox exports (`.mbox`, `.eml`), a WordPress
export, a Shopify products CSV, support chat exports, documents (`.docx`, `.pdf`, `.md`, `.txt`) and
saved web pages, in any mix, zipped or not. Exercise 3 below makes the folder and a template
`brand.yaml` for you. Then set `BRAND = "data/mine"` in the setup cell of each notebook. Nothing else
in the notebooks changes. (`data/mine/` is left out of git: your customers' mail stays on your machine.)"""

BACK = ("*Mode and your own data.* This notebook runs in full mode unless `BRANDKIT_MODE` or the `MODE` line of "
        "its setup cell says smoke, on the brand kit `BRAND` names (a sample, or your own folder): "
        "[00 · Set up](00_setup.ipynb) explains both.")

FRESH_RUNTIME = ("*On Colab* this notebook runs on a fresh machine and finds the earlier notebooks' work in the run "
                 "folder on your Drive (see 00). With `USE_DRIVE = False` that folder would be empty here, and the "
                 "next cell would redo every earlier stage, training included (10 to 20 minutes of GPU).")


def exercises(*items: tuple[str, str, str, str]) -> list[tuple[str, str]]:
    """The exercises: each says what to do and what to expect, then its worked answer, hidden until opened."""
    cells = [("md", "## Exercises\n\nEach exercise says what result to expect. Its worked answer is the hidden cell "
                    "under it: click the cell's collapsed input (in Colab, *Show code*) to read the code, or run it to "
                    "see the result. Try first.")]
    for number, (level, task, expect, answer) in enumerate(items, 1):
        cells.append(("md", f"### Exercise {number}\n\n**{level}.** {task}\n\n*What to expect:* {expect}"))
        cells.append(("answer", f"# @title Answer {number}\n{answer.strip()}"))
    return cells


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

NOTEBOOKS["00_setup"] = [
    ("md", header(
        "00_setup", "00 · Set up: where am I, and what will training run on?",
        ["say where the notebooks are running (Colab, JupyterLab, Kaggle) and on what hardware",
         "install brandkit and check the versions it was tested with",
         "explain which hardware preset training will use, and why",
         "choose smoke or full mode for every notebook, and know where the run folder lives"],
        "5 minutes", "2 minutes", "nothing yet. On Colab, choose *Runtime → Change runtime type → T4 GPU* first.",
        """This course turns a small business's own writing (emails, blog posts, product pages, support chats,
manuals) into a language model that writes in that business's voice, and then asks the question an owner
would ask: **is a model tuned on my writing better than a generic model I prompt well, and how much
editing do its drafts still need?** In notebook 04 three contenders answer the same requests, ones the
model never trained on: the generic model with a one-line prompt, the generic model with the best prompt
you could write by hand (your voice, your words, a few of your own texts), and the tuned model with the
one-line prompt. You judge them with numbers, with blind votes, and by editing their drafts until you
would send them.

Six notebooks, in order: set up, collect, clean, fine-tune, compare, export.""")),
    ("md", MODES + "\n\n" + DRIVE + "\n\n" + OWN_DATA),
    ("code", SETUP),
    ("md", "## Where are we?\n\nThe first thing to know is where this notebook runs and what it can use. A GPU "
           "makes training minutes instead of hours; without one, everything still works, on a small model."),
    ("code", "from brandkit.course import environment, explain_preset, version_problems\n\n"
             "env = environment()\n"
             "for key in (\"where\", \"python\", \"hardware\", \"preset\", \"mode\"):\n"
             "    print(f\"{key:>9}: {env[key]}\")\n"
             "env[\"versions\"]"),
    ("md", "## Versions\n\nFine-tuning libraries move fast, and most errors after a Colab update are version "
           "mismatches. brandkit pins the versions it is tested with; the cell below lists any that differ. "
           "If it shows problems on Colab, use *Runtime → Restart session* and run the notebook again. The "
           "checkpoint at the end will not pass until the list is empty."),
    ("code", "problems = version_problems()\nprint(\"\\n\".join(problems) or \"All pinned versions match.\")"),
    ("md", "## Which preset, and why\n\nThe hardware decides how training runs. A T4 has no bfloat16, so it "
           "trains in float16 and loads the model in 4 bits to fit in 16 GB; newer GPUs use bfloat16; a CPU "
           "trains without gradient checkpointing, in bfloat16 only where brandkit measured its bfloat16 "
           "matmuls running fast (recent CPUs with bf16 instructions: about twice as fast as float32), "
           "otherwise in float32, because emulated bfloat16 is many times slower (on some machines it "
           "crashes outright)."),
    ("code", "print(explain_preset())"),
    ("md", "## The run\n\nEvery notebook builds the same configuration from `MODE`, `BRAND` and `RUN_DIR`, and "
           "keeps its work in one run folder, one sub-folder per stage. The next notebook picks up what this "
           "one leaves there."),
    ("code", START),
    ("md", "## Checkpoint\n\nThis cell checks what this notebook promised: the pinned versions are installed, the "
           "brand kit can be judged, the model is there. If it fails, its message says what to do."),
    ("code", r'''from brandkit.models import resolve_model

problems = version_problems()
assert not problems, ("these versions differ from the ones brandkit is tested with:\n  " + "\n  ".join(problems)
                      + "\nOn Colab: Runtime > Restart session, then run this notebook again. Elsewhere: "
                      "`make setup`, or pip install the versions named above.")
assert run.brand.eval_prompts, "the brand kit has no eval_prompts: add a few requests to its brand.yaml"
if not config.train.base_model.count("/"):  # a name brandkit installs offline
    assert os.path.exists(resolve_model(config.train.base_model)), "the offline model is missing: run `make setup`"
print("Setup OK:", env["hardware"], "| preset", env["preset"], "| all pinned versions match")'''),
    *exercises(
        ("Start here",
         "How much memory does this machine have for training, and which preset did brandkit pick for it? "
         "(On Colab, `!nvidia-smi` shows the GPU's own view.)",
         "on a Colab T4, a GPU of about 15 GB and the `t4` preset (float16, the model in 4 bits, batches of "
         "2 x 4); on a laptop, the machine's memory and the `cpu` preset (float32, or bfloat16 where the CPU runs it fast; batches of 8, "
         "though SmolLM2's own defaults train it in batches of 4).",
         r'''
from brandkit.presets import PRESETS

print(f"{env['hardware']}: {env['memory_gb']} GB")
print(f"preset {env['preset']!r}: {PRESETS[env['preset']]}")
assert env["preset"] in PRESETS and env["memory_gb"] > 0
assert (env["preset"] == "cpu") == (not env["gpu"])
print(f"Answer 1: {env['memory_gb']} GB, the {env['preset']!r} preset")'''),
        ("Go further",
         "Which mode is this notebook in, and how would you run the *whole* course in smoke mode?",
         "this notebook is in full mode unless you set it. `MODE` changes only the notebook it is written in; "
         "`BRANDKIT_MODE=smoke` set before Jupyter starts (or `%env` first in each Colab notebook) changes all "
         "of them. Smoke trains 6 steps in `runs/course-smoke`, full the model's own epochs in "
         "`runs/course-full`.",
         r'''
from brandkit.course import describe_mode, resolve_mode

print("This notebook:", resolve_mode(MODE))
for mode in ("smoke", "full"):
    print(describe_mode(mode))
assert course_config("smoke").train.max_steps == 6 and course_config("full").train.max_steps == -1
print("Answer 2: each notebook reads its own MODE line; BRANDKIT_MODE sets the mode for all of them")'''),
        ("Your own data",
         "Start your own brand kit: a folder with a `brand.yaml` to rewrite and an `exports/` folder for your "
         "files.",
         "a folder `data/mine/` (on Colab, `MyDrive/brandkit/mine/` on your Drive) with a template "
         "`brand.yaml` and an empty `exports/`, and the list of what is still to write. A `brand.yaml` you "
         "already have is never overwritten. When the list is empty, set `BRAND` to that folder in each "
         "notebook; `data/samples/ember-coffee/brand.yaml` is a finished example.",
         r'''
from brandkit.course import brand_kit_todo, start_brand_kit

mine = start_brand_kit()  # data/mine (your Drive on Colab); an existing brand.yaml is kept as it is
todo = brand_kit_todo(mine)
print(f"Your brand kit: {mine}/brand.yaml. Still to do:")
print("\n".join(f"  - {line}" for line in todo) or f"  nothing: set BRAND = {mine!r} in each notebook")
assert os.path.isfile(os.path.join(mine, "brand.yaml")) and brand_kit_todo("ember-coffee") == []
print(f"Answer 3: {mine}, {len(todo)} thing(s) to do")''')),
]

NOTEBOOKS["01_collect"] = [
    ("md", header(
        "01_collect", "01 · Collect: gather the writing your business already has",
        ["import emails, blog posts, product pages, chats and documents into one uniform set of records",
         "read the collect report: every file imported, or skipped with a reason",
         "see what kinds of writing you have, and how much"],
        "3 minutes", "2 minutes", "the setup from `00_setup`.",
        "A model learns a voice from examples. Most small businesses already have hundreds of them, spread "
        "over a mailbox, a website and a shop. This step gathers them without changing a single original: "
        "files are only ever read.")),
    ("md", BACK),
    ("code", SETUP),
    ("code", START),
    ("md", "## The brand kit\n\nThe brand kit says who we write for: the voice, the words the business likes "
           "and avoids, the sign-off, and the prompts we will use at the end to judge the result."),
    ("code", "brand = run.brand\nprint(brand.name, \"-\", brand.sells)\nprint(\"Voice:\", brand.voice)\n"
             "print(\"Preferred:\", \", \".join(brand.preferred_terms))\nprint(\"Never:\", \", \".join(brand.banned_terms))"),
    ("md", "## Add files (optional)\n\nYou can also upload files here; they are copied into an `uploads` folder "
           "inside the exports folder (the originals on your computer are untouched)."),
    ("code", "from brandkit.course import colab_upload, on_colab\n\n"
             "if on_colab():  # ipywidgets' FileUpload drops files of about 1 MB or more on Colab: use Colab's own dialog\n"
             "    colab_upload(config.source_dir() / \"uploads\")\n"
             "else:\n"
             "    from brandkit.widgets import upload_widget\n"
             "    display(upload_widget(config.source_dir() / \"uploads\"))"),
    ("md", "**Big exports on Colab.** A mailbox export can be hundreds of megabytes, slow to upload and lost "
           "when the runtime disconnects. Put it on Google Drive instead (in an `exports/` folder next to your "
           "`brand.yaml`, say `MyDrive/brandkit/mine/`) and set `BRAND = \"/content/drive/MyDrive/brandkit/mine\"` "
           "in the setup cell: the setup cell mounts Drive."),
    ("md", "## Collect\n\nEach file goes to the importer for its format: mail is split into messages "
           "(quoted-printable, base64 and odd character sets decoded), a WordPress export into published "
           "posts, a Shopify export into products (one row per variant, folded), chat exports into "
           "conversations. Files that cannot be read are skipped with the reason, and the import goes on. "
           "From a mailbox only the mail the business *sent* is kept (its From is one of the brand kit's "
           "`sends_from`, or Gmail labelled it Sent): customers' messages are set aside and counted."),
    ("code", "result = run.collect()\nresult.report_frame()"),
    ("code", "from brandkit.figures import collect_figure\n\ncollect_figure(result)"),
    ("md", "## A look at the records\n\nEvery record has the same fields whatever it came from: an id, the "
           "source file, its kind, a title, the text (or the turns of a chat), and metadata."),
    ("code", "import pandas as pd\n\n"
             "pd.DataFrame([{\"kind\": r.kind, \"title\": r.title[:50], \"source\": r.source, \"text\": r.text[:80]}\n"
             "              for r in result.records[::12]])"),
    ("md", "## Checkpoint\n\nEvery file is accounted for (imported, or skipped with a reason) and the records are "
           "saved in the run folder, where 02 will read them."),
    ("code", "from brandkit.collect import load_records\n\n"
             "saved = load_records(run.path(\"collect\"))\n"
             "assert len(saved) == len(result.records) > 0, \"no records were saved\"\n"
             "assert len(result.files) == len(result.imported) + len(result.skipped), \"a file is unaccounted for\"\n"
             "assert all(f.reason for f in result.skipped), \"a skipped file has no reason\"\n"
             "print(\"Collect OK:\", result.summary())"),
    *exercises(
        ("Start here",
         "Which files were skipped, and why? Would any of them be worth converting to a format brandkit reads?",
         "on the samples, two: a `.DS_Store` (a hidden system file) and a logo (a `.png`, no text), so nothing "
         "of value is lost. In your own exports, look for spreadsheets (save them as CSV), scanned PDFs with no "
         "text in them, and files over 50 MB.",
         r'''
report = result.report_frame()
skipped = report[report["status"] == "skipped"][["file", "reason"]]
display(skipped)
assert len(skipped) == len(result.skipped) and skipped["reason"].str.len().gt(0).all()
print(f"Answer 1: {len(skipped)} file(s) skipped, each with its reason")'''),
        ("Go further",
         "Put a CSV of your own with a `text` column through collect. What kind do its rows get?",
         "`other`, since nothing says what they are; a file name with *newsletter* or *email* in it makes them "
         "emails (*blog*, *product*, *faq* work the same way), and a `kind` column wins over both. The answer "
         "uses a scratch folder in the run, so your exports are not touched.",
         r'''
import csv
from pathlib import Path

from brandkit.collect import collect

scratch = run.path("exercise-csv")  # a scratch folder in the run folder, not your exports
scratch.mkdir(parents=True, exist_ok=True)
rows = [{"text": "Our spring menu is here, friends: three new brews and a cosy lemon cake.", "kind": ""},
        {"text": "Free shipping this weekend on every bag of beans. Stay warm!", "kind": "email"}]
for name in ("notes.csv", "newsletter.csv"):
    with open(scratch / name, "w", newline="", encoding="utf-8") as handle:
        table = csv.DictWriter(handle, fieldnames=["text", "kind"])
        table.writeheader()
        table.writerows(rows)
kinds = {}
for record in collect(scratch, progress=False).records:
    kinds.setdefault(Path(record.source).name, []).append(record.kind)
print(kinds)
assert kinds == {"notes.csv": ["other", "email"], "newsletter.csv": ["email", "email"]}, kinds
print("Answer 2: no kind column and a plain name -> other; the file name or a kind column decides otherwise")'''),
        ("Your own data",
         "Export your sent mail (Gmail: Google Takeout → Mail) and your blog (WordPress: Tools → Export), put "
         "them in your brand kit's `exports/` folder (exercise 3 of 00), set `BRAND` to that folder and run this "
         "notebook. How much of your mail was kept?",
         "every file imported or skipped with a reason. A mailbox keeps only the mail you sent: if the number of "
         "received messages set aside is nearly everything, your sending address is missing from `sends_from` "
         "in `brand.yaml`. On the samples every message in the mailbox was sent by the shop, so none are set "
         "aside.",
         r'''
report = result.report_frame()
mail = report[report["importer"].isin(["mbox", "email"])][["file", "records", "notes"]]
display(mail)
print(f"{result.set_aside} received message(s) set aside; sends_from: {run.brand.sends_from or 'none set'}")
assert result.set_aside >= 0 and (len(mail) == 0 or mail["records"].sum() > 0)
print(f"Answer 3: {int(mail['records'].sum())} sent message(s) kept from {len(mail)} mail file(s)")'''),
    ),
]

NOTEBOOKS["02_clean"] = [
    ("md", header(
        "02_clean", "02 · Clean: from \"our sent folder\" to text worth learning from",
        ["see what cleaning does to each document, and why, step by step",
         "check that personal data (emails, phone numbers, cards, names) is redacted before training",
         "read the data-readiness report before spending any GPU time"],
        "3 minutes", "3 minutes", "the records from `01_collect` (this notebook collects them if they are missing).",
        "Raw exports are full of things a model should not learn: quoted replies, signatures, legal "
        "disclaimers, \"unsubscribe\" footers, broken characters, duplicates, and customers' personal details. "
        "Models trained on uncleaned sent folders learn to write disclaimers. Every change here is recorded "
        "with its reason, and the collected records themselves are never modified.")),
    ("md", BACK),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"clean\")"),
    ("md", "## Clean\n\nEight steps, in order: repair broken characters, turn HTML into text, strip email "
           "quotes, signatures and disclaimers, remove footers that repeat across many documents (but keep "
           "your sign-off), redact personal data, drop texts that are too short or not in your language, then "
           "drop exact and near duplicates, keeping the earliest copy. Each can be switched off in "
           "`config.clean`, but try that in a branch of the run (exercise 2), never in the run 03 trains on."),
    ("code", "clean_result = run.clean()\nclean_result.steps_frame()"),
    ("code", "clean_result.kinds_frame()"),
    ("md", "## Before and after\n\nPage through every document that was changed or dropped: the reasons, and "
           "the text with removals struck through and additions highlighted."),
    ("code", "from brandkit.collect import load_records\nfrom brandkit.widgets import DiffPager\n\n"
             "DiffPager(load_records(run.path(\"collect\")), clean_result)"),
    ("md", "## Personal data\n\nEmail addresses, phone numbers, payment cards (checked with the Luhn "
           "algorithm), IBANs, street addresses, links carrying tokens and customers' names become typed "
           "placeholders such as `[EMAIL]`. Staff and business names from the brand kit are kept. The model "
           "learns the placeholders too (a tuned model may greet \"Dear [PERSON]\"): better that than a "
           "customer's real name."),
    ("code", "clean_result.redaction()"),
    ("md", "## Ready to train?\n\nThe readiness report looks at the examples as the chosen model's tokenizer "
           "will see them: how many, how long, how much was redacted, and what to do about any problem. Under "
           "about 100 examples a model learns little of a voice: add writing before spending GPU time."),
    ("code", "readiness = run.readiness(clean_result)\nreadiness"),
    ("md", "## Checkpoint\n\nSomething survived cleaning, no email address got through, every change has its "
           "reason, and the readiness report is saved beside the cleaned data."),
    ("code", "from brandkit.clean import load_cleaned\n\n"
             "cleaned = load_cleaned(run.path(\"clean\"))\n"
             "assert len(cleaned) > 0, \"nothing survived cleaning\"\n"
             "assert not any(\"@example.com\" in t for t in cleaned[\"text\"]), \"an email address was not redacted\"\n"
             "assert all(e[\"reason\"] for e in clean_result.audit), \"a change has no reason\"\n"
             "assert run.path(\"clean\", \"readiness.json\").exists(), \"the readiness report was not saved\"\n"
             "print(\"Clean OK:\", clean_result.summary())"),
    *exercises(
        ("Start here",
         "Find a document whose signature was removed (the diff pager shows them; so does the audit). Was "
         "anything of value lost?",
         "the signature block goes (a name line, the café's address, a phone number, an email address) and the "
         "brand's own sign-off stays (\"Stay warm, the Ember crew ☕\" for Ember), because the brand kit names it: "
         "nothing of the voice is lost.",
         r'''
kept_ids = set(clean_result.dataset["id"])
entry = next((e for e in clean_result.audit if e["step"] == "strip_email" and "signature" in e["reason"]
              and e["id"] in kept_ids), None)
if entry is None:
    print("No signature was removed from a kept document.")
else:
    print(entry["reason"], "\n--- before ---\n" + entry["before"] + "\n--- after ---\n" + entry["after"])
    text = clean_result.dataset[list(clean_result.dataset["id"]).index(entry["id"])]["text"]
    if run.brand.sign_off.strip() in entry["before"]:
        assert run.brand.sign_off.strip() in text, "the brand's sign-off should survive cleaning"
print(f"Answer 1: {entry['reason'] if entry else 'none'}")'''),
        ("Go further",
         "Switch redaction off and clean again, in a branch of the run: a run folder beside yours, so that 03 "
         "still trains on your redacted data. Compare what was redacted. When would you want redaction off?",
         "the branch's redaction table is empty and its texts keep the names, email addresses and phone "
         "numbers that yours turned into `[PERSON]`, `[EMAIL]`, `[PHONE]`; your own run's cleaned data is "
         "untouched. Redaction off is only for text with nobody else's details in it, such as your own "
         "published blog posts: never for mail or chats.",
         r'''
from brandkit.clean import load_cleaned

def placeholders(texts):
    return sum(t.count("[PERSON]") + t.count("[EMAIL]") + t.count("[PHONE]") for t in texts)

unredacted = run.branch("no-redaction", upto="collect")  # a run folder beside yours, with your collected records
unredacted.config.clean.redact_pii = False
unredacted_result = unredacted.clean()
print("redacted in your run:  ", clean_result.redaction()["entities"])
print("redacted in the branch:", unredacted_result.redaction()["entities"] or "nothing")
print("[PERSON], [EMAIL] and [PHONE] in the texts:", placeholders(clean_result.dataset["text"]), "in yours,",
      placeholders(unredacted_result.dataset["text"]), "in the branch")
assert unredacted_result.redaction()["redacted_chars"] == 0 and placeholders(unredacted_result.dataset["text"]) == 0
assert placeholders(load_cleaned(run.path("clean"))["text"]) == placeholders(clean_result.dataset["text"]) > 0
print(f"Answer 2: nothing redacted in {unredacted.dir}; {run.dir} (what 03 trains on) is unchanged")'''),
        ("Your own data",
         "Add your staff's first names to `staff:` in your `brand.yaml` and check they survive redaction in your "
         "own documents.",
         "each staff name is still in the cleaned texts, though fewer times than in the exports (the signature "
         "blocks and duplicates that held some of them are gone); customers' names in the same messages became "
         "`[PERSON]`. A name missing from `staff:` is redacted like a customer's.",
         r'''
records = load_records(run.path("collect"))
for name in run.brand.staff:
    before = sum(text.count(name) for text in records["text"])
    after = sum(text.count(name) for text in clean_result.dataset["text"])
    print(f"{name}: {before} times in the exports, {after} after cleaning")
    assert after > 0 or before == 0, f"{name} was redacted: is it in staff: in brand.yaml?"
print(f"Answer 3: {len(run.brand.staff)} staff name(s) checked" if run.brand.staff else
      "Answer 3: the brand kit lists no staff: add them to staff: in brand.yaml")'''),
    ),
]

NOTEBOOKS["03_finetune"] = [
    ("md", header(
        "03_finetune", "03 · Fine-tune: teach a model the voice",
        ["turn documents into the requests a user would make, answered by the document",
         "see exactly which tokens the model learns from (the answers, not the prompts)",
         "say what LoRA trains, why the adapter is small, and what rank, alpha, learning rate and epochs do",
         "read a loss curve, your own, with its numbers, and recognise over-fitting by making it happen"],
        "15 to 25 minutes", "10 to 20 minutes", "the cleaned data from `02_clean` (made here if missing).",
        "Fine-tuning shows a model many pairs of *request → your answer*. An email becomes \"Write a "
        "promotional email with the subject …\" answered by the email; a product page becomes \"Write a "
        "product description for …\"; a support chat stays a conversation. The model learns only from the "
        "answers, so it learns to write like you rather than to ask like your customers.")),
    ("md", BACK),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"examples\")"),
    ("md", "## Examples and splits\n\nA fixed share of each kind of document is held out: the model never "
           "trains on it, so the compare notebook can test it on writing it has not seen. Another share is the "
           "*validation* set, which training checks itself against as it goes."),
    ("code", "examples = run.examples()\nexamples[\"train\"][0][\"messages\"]"),
    ("md", "## What the model learns from\n\nThe highlighted part is learned; the grey part (the system prompt "
           "and the request) is context only. The end-of-turn token at the end of the answer is learned too: "
           "that is how the model learns to stop."),
    ("code", "from IPython.display import HTML\n\n"
             "from brandkit.chat import prepare_tokenizer\n"
             "from brandkit.models import load_tokenizer\n"
             "from brandkit.widgets import mask_html\n\n"
             "tokenizer = load_tokenizer(config.train.base_model)\nprepare_tokenizer(tokenizer)\n"
             "HTML(mask_html(tokenizer, examples[\"train\"][0][\"messages\"]))"),
    ("md", """## What LoRA trains

A language model is a stack of layers, and each layer is mostly large weight matrices: the attention
projections (`q_proj`, `k_proj`, `v_proj`, `o_proj`), which decide which earlier words matter, and the
feed-forward ones (`gate_proj`, `up_proj`, `down_proj`). Training all of them means keeping a gradient and
optimizer state for every weight, and saving a whole new model for every brand.

**LoRA** (low-rank adaptation) freezes them all. Beside a weight matrix *W* with *d_in* inputs and
*d_out* outputs it puts two thin matrices, *A* (*r* × *d_in*) and *B* (*d_out* × *r*), and the layer
computes *Wx* + (*alpha* / *r*) · *BAx*. Only *A* and *B* learn. *B* starts at zero, so training starts
from exactly the base model; the update *BA* has the shape of *W* but holds only *r* × (*d_in* + *d_out*)
numbers instead of *d_in* × *d_out*. For a 576 × 576 matrix (SmolLM2's attention) at rank 16 that is
18,432 numbers instead of 331,776. So the adapter is a file of megabytes that rides on the base model,
and it trains on a laptop. After training you will see your own adapter counted against your model.

The settings that decide what training does:

- **Rank** (`lora_r`): how many independent directions each update may use. Double the rank, double
  the adapter. A voice needs few directions, so 8 to 32 is usual; a larger rank mostly makes it easier to
  memorise.
- **Alpha** (`lora_alpha`): a volume knob; the update is multiplied by alpha / rank. brandkit's defaults
  set alpha to twice the rank; if you change the rank, change alpha with it, or the update gets louder
  or quieter too.
- **Learning rate**: how big a step each update takes. Too high and the loss jumps about, or the model
  over-fits within a few steps (you will make that happen below); too low and nothing moves. Small models
  want bigger steps than the 2e-4 Unsloth's notebooks use for 1-8B models; this run's is in the table
  below.
- **Epochs**: how many times training goes through every example. One or two teach the style; many more
  teach the examples themselves, word for word.
- **Batch**: examples per update. Bigger batches make steadier, fewer steps."""),
    ("md", """## This run's settings

One configuration drives training on any hardware. What you set in `config.train` wins; every setting left
at `auto` is filled in from the hardware preset and the model's own defaults. The table holds the settings
that matter, with this run's values. All of them (about thirty) are saved with the adapter, in
`train/adapter/brandkit_train.yaml`.

**Validation and checkpoints.** brandkit's own defaults validate every 25 steps and save a checkpoint
every 50: right for long runs, but a 40-step run on a T4 (a sample brand, three epochs) would get one
validation point, no checkpoint, and no over-fitting warning. So in full mode the course sets
`config.train.eval_steps = 0.1` and `config.train.save_steps = 0.1`, a share of the run: a validation
point and a checkpoint every tenth (smoke mode: every 2 of its 6 steps). If you train from a config of
your own, set these two before the train cell."""),
    ("code", "from brandkit.hardware import detect_hardware\nfrom brandkit.lessons import key_settings\n"
             "from brandkit.presets import resolve_config\n\n"
             "# with the number of examples: a small set trains for the model's minimum steps, not its epochs\n"
             "resolved, preset, why = resolve_config(config.train, detect_hardware(), train_examples=len(examples[\"train\"]))\n"
             "print(\"\\n\".join(why))\n"
             "key_settings(resolved).style.set_properties(**{\"text-align\": \"left\"})  # .style: no cut-off text"),
    ("md", """## Train

The plot redraws as training runs. The **training loss** is measured on the batch the model has just
learned from; the **validation loss** on examples it never trains on. Both should fall. If the validation
loss turns and rises while the training loss keeps falling, the model has started to memorise its
examples instead of learning the voice, and brandkit says so in plain words.

*On Colab*, if the runtime disconnects during training, reconnect, run the setup cell and the cells down
to this one again: training resumes from the last checkpoint (the run folder is on your Drive, see 00).
It resumes only with unchanged settings; otherwise it starts over, and says so."""),
    ("code", "from brandkit.widgets import LiveLossPlot\n\n"
             "plot = LiveLossPlot()\ndisplay(plot)\n"
             "train_result = run.train(callbacks=[plot.callback])"),
    ("md", """## Reading your loss curve

The loss is the model's average surprise at each next token of the answers: the negative logarithm of
the probability it gave the right token. A loss of 2.3 means it gave the right token about one chance in
ten, since e^2.3 ≈ 10; that number, e to the loss, is the **perplexity**, which 04 uses too. Here is
your own curve read with its numbers, then brandkit's notes on the run:"""),
    ("code", "from brandkit.lessons import read_loss_curve\n\n"
             "print(read_loss_curve(train_result.log_history))\n"
             "print(\"\\n\".join(f\"note: {note}\" for note in train_result.notes))"),
    ("md", "In smoke mode six steps only start the curve: expect both losses a little lower at the end than at "
           "the start, and \"still falling\". In full mode, look for where the validation loss flattens: past "
           "that point more training stops paying off."),
    ("md", "## What was trained: LoRA in numbers\n\nCounted from the files: the base model's parameters (from its "
           "configuration, no weights loaded) against the numbers in your adapter; on the right, what the rank "
           "would do to the adapter's size."),
    ("code", "from brandkit.lessons import adapter_size, adapter_size_figure\n\n"
             "size = adapter_size(train_result.adapter_dir)\nprint(size.sentence())\nadapter_size_figure(size)"),
    ("md", """## An experiment: make it over-fit

Over-fitting is easiest to recognise once you have caused it. The next cell trains again in a branch of
the run (the folder `<run folder>-overfit`, so your adapter above is untouched): on four examples in a
single batch, at three times this run's learning rate, with a validation point after every step. Every
step is then a whole pass over the same four examples, so the model learns them by heart. Training stops
as soon as the validation loss has risen twice in a row, which is when brandkit's warning fires.

*What to expect:* a few steps, then brandkit's line "overfitting: the validation loss has risen twice in a
row"; the training loss falling steeply while the validation loss climbs from its lowest point, at the
first step or two."""),
    ("code", "from brandkit.figures import loss_figure\nfrom brandkit.lessons import overfitting_experiment\n\n"
             "overfit = overfitting_experiment(run)\nprint(read_loss_curve(overfit.log_history))\n"
             "loss_figure(overfit.log_history)"),
    ("md", "That is the shape to watch for in real runs: the training loss still falling, the validation loss "
           "rising. The cures: stop near the best step (fewer epochs, or `max_steps`), a lower learning rate, "
           "or more, and more varied, examples."),
    ("md", "## Checkpoint\n\nThe adapter and its tokenizer are saved, the loss is a number at every reading, the "
           "adapter is a small share of the model, and the experiment fired brandkit's over-fitting warning "
           "without touching your adapter."),
    ("code", r'''adapter = train_result.adapter_dir
assert (adapter / "adapter_config.json").exists() and (adapter / "tokenizer.json").exists()
losses = [h["loss"] for h in train_result.log_history if "loss" in h]
assert losses and all(l == l for l in losses), "the training loss is missing or NaN"
assert size.share < 0.1, "LoRA should train a small share of the model"
assert any(n.startswith("overfitting") for n in overfit.notes), "the over-fitting warning did not fire"
assert adapter == run.path("train", "adapter") != overfit.adapter_dir, "the experiment must not replace your adapter"
print(f"Fine-tune OK: {len(losses)} loss readings, last {losses[-1]:.3f}; adapter in {adapter} "
      f"({size.share:.1%} of the model)")'''),
    *exercises(
        ("Start here",
         "Open `train/adapter/README.md` in the run folder, the adapter's model card. What does it say about your "
         "data and your run?",
         "five lines that say what the adapter is: the base model; the LoRA rank, alpha and adapted modules; the "
         "learning rate, epochs and batch; how many training examples of which kinds, in how many tokens; and "
         "the final training and validation loss.",
         r'''
card = (train_result.adapter_dir / "README.md").read_text()
lines = [line for line in card.splitlines() if line.startswith(("- Base model", "- LoRA", "- Training", "- Data",
                                                                "- Result"))]
print("\n".join(lines))
assert len(lines) == 5 and f"r={resolved.lora_r}" in card and "training examples" in card
print("Answer 1: the card names the model, the settings, the data and the result")'''),
        ("Go further",
         "Double the learning rate and train again into a new run folder, then compare the two curves. A "
         "branch of the run is that folder: `run.branch(name)` copies the finished stages (here up to the "
         "examples) beside your run and gives it its own settings to change.",
         "a second run in `<run folder>-lr-x2`, trained at twice the step size; your adapter stays where it is. "
         "Its training loss should fall faster. Whether its validation loss ends lower or higher is what the "
         "experiment is for: in a short run the faster learner is often ahead, in a long one it tends to "
         "over-fit sooner. The same lines try anything else: `lora_r = 4` and `lora_alpha = 8` for a quarter of "
         "the rank, or, with "
         "`upto=\"clean\"` and `branch.examples()` before training, `branch.config.examples.system_prompt = "
         "\"brand\"` to train with the brand kit's long prompt.",
         r'''
from brandkit.lessons import loss_curves_figure

faster = run.branch("lr-x2", upto="examples")  # a new run folder beside yours, your examples copied into it
faster.config.train.learning_rate = 2 * resolved.learning_rate
faster_result = faster.train()
print("yours: ", read_loss_curve(train_result.log_history))
print("lr x 2:", read_loss_curve(faster_result.log_history))
assert faster_result.config.learning_rate == 2 * resolved.learning_rate
assert faster_result.adapter_dir == faster.path("train", "adapter") != train_result.adapter_dir
print(f"Answer 2: trained at learning rate {faster_result.config.learning_rate:g} in {faster.dir}")
loss_curves_figure({f"lr {resolved.learning_rate:g}": train_result.log_history,
                    f"lr {faster_result.config.learning_rate:g}": faster_result.log_history})'''),
        ("Your own data",
         "Read the readiness report for your data (02 saved it in the run folder): is there enough to learn a "
         "voice from?",
         "the number of training examples, their lengths and any warnings. About 100 examples is the least "
         "that teaches a voice: Ember Street has about that many, the two smaller samples about half and a "
         "warning to add writing. With fewer, add more writing before spending GPU time; each warning names "
         "its fix. (In smoke mode you will also see many examples flagged as longer than its short "
         "`max_seq_length` of 256 tokens: a rehearsal's shortcut, not a problem with the data.)",
         r'''
import json

ready = json.loads(run.path("clean", "readiness.json").read_text())
print(f"{ready['examples']} training examples ({ready['by_kind']}), median {ready['tokens']['median']:.0f} tokens")
print("\n".join(f"warning: {w}" for w in ready["warnings"]) or "no warnings")
assert ready["examples"] == len(examples["train"])
print(f"Answer 3: {ready['examples']} examples, {len(ready['warnings'])} warning(s)")'''),
    ),
]

NOTEBOOKS["04_compare"] = [
    ("md", header(
        "04_compare", "04 · Compare: does it beat a good prompt, and how much editing is left?",
        ["pit the tuned model against the generic model with a simple prompt and with the best hand-written "
         "brand prompt, on the same held-out requests",
         "read perplexity and the brand-style score with your own figures, and say what a score of 0.8 means",
         "say whether the tuned model beats prompting the generic one, and by how much, with an interval",
         "vote blind, edit drafts until you would send them, and read the result in plain words",
         "try any request in the playground and keep the answers worth keeping"],
        "5 minutes", "10 to 25 minutes", "the adapter from `03_finetune` (trained here if missing).",
        "The promise of fine-tuning is that a simple prompt gives a draft that is nearly ready to send, where a "
        "generic model needs a long prompt explaining the brand and still needs heavy editing. This notebook "
        "answers the course's question from 00, **is the tuned model better than a generic model you prompt "
        "well, and how much editing do its drafts still need?** Three contenders answer the same requests, ones "
        "the model never trained on, and you judge them with numbers, blind votes, and your own edits.")),
    ("md", BACK + "\n\n" + FRESH_RUNTIME),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"compare\")"),
    ("md", "## The question, and three contenders\n\n- **Generic, simple prompt**: the base model (adapter off) "
           "with the short request a busy owner types.\n- **Generic + brand prompt**: the base model with the best "
           "prompt a careful user writes by hand: your brand kit's voice, preferred and banned words and sign-off, "
           "then a few of your own *training* texts of the same kind as examples, as many as fit the model's "
           "context. Never a held-out text.\n- **Tuned, simple prompt**: the adapter switched on, with the same "
           "short prompt it was trained with (`config.examples.system_prompt`).\n\nOne model is in memory; the "
           "adapter is switched off and on. Look at the prompt lengths beside the scores: the question is whether "
           "the tuned model needs the long prompt at all.\n\n**Four ways to judge.** Two numbers, measured on "
           "every answer: held-out *perplexity* and the *brand-style score*. Two by people: *blind votes* (which of "
           "two unlabelled answers sounds more like the brand?) and *editing* (change a draft until you would send "
           "it: what survives is what the model got right). The numbers are quick and the same every time; the "
           "people are the owner's real test."),
    ("code", "comparison = run.compare()\nmetrics = comparison[\"metrics\"]\nprint(metrics[\"verdict\"])\n"
             "comparison[\"contenders\"]"),
    ("md", """## Perplexity: how surprised is each model by your real writing?

Perplexity is e to the average loss (03 explained the loss) on the brand's own held-out answers: in effect,
how many equally likely next tokens the model is choosing among at each step. Lower means your real
writing surprises it less. It is measured with the prompt training used, so for two contenders only:
the generic model with the simple prompt, and the tuned one (the prompted contender's prompt is another).
Compare perplexities within one run only: another model or tokenizer counts on another scale."""),
    ("code", "from brandkit.lessons import perplexity_sentence\n\nprint(perplexity_sentence(metrics))"),
    ("md", """## The brand-style score: does it *sound* like you?

A classifier learns from your training texts against generic business writing, and against your own texts
with their words shuffled, so that your vocabulary in nonsense order does not pass for your voice. It gives
each answer the probability that the brand wrote it. **A score of 0.8 means the classifier would give about
4 to 1 that the brand wrote the text**; 0.5 means it cannot tell. The score is worth only what the
classifier is, so here is its accuracy on texts it was not trained on, and the score your own held-out
writing gets: that, not 1, is the mark to hold each contender against."""),
    ("code", "from brandkit.lessons import style_score_sentence\nfrom brandkit.report import style_figure, "
             "stylometrics_figure\n\nprint(style_score_sentence(metrics))\n"
             "style_figure(comparison[\"per_generation\"], comparison[\"reference\"])"),
    ("md", "## By how much?\n\nThe verdict compares averages. Paired request by request, here is the tuned model's "
           "lead over each generic contender, with a 95% interval from resampling the requests. When the interval "
           "includes 0, these requests cannot tell the two apart; more requests narrow it."),
    ("code", "from brandkit.lessons import style_gap_sentence\n\n"
             "print(style_gap_sentence(comparison[\"per_generation\"], \"tuned\", \"prompted\"))\n"
             "print(style_gap_sentence(comparison[\"per_generation\"], \"tuned\", \"generic\"))"),
    ("md", "## Habits\n\nThe measurable habits behind the score, one column per contender and one for the brand: "
           "sentence length, reading ease, \"you\" and \"we\" per 100 words, exclamations, emoji, preferred and "
           "banned terms, the sign-off. The tuned column should move towards the brand's."),
    ("code", "comparison[\"summary\"]"),
    ("code", "stylometrics_figure(metrics[\"style\"])"),
    ("md", "## Blind first: vote, then edit\n\nType your name. **Blind vote** shows two answers as A and B in a "
           "random order (the tuned model against the prompted generic one first, then against the simple "
           "generic one). **Edit a draft** gives you one draft at a time, not saying who wrote it: edit it until "
           "you would send it, then save. The labelled side-by-side view and the win rates appear once you have "
           "voted on every item, or when you choose to reveal them; items you then see labelled are flagged in "
           "the data. Every vote and edit is saved the moment you click; after a restart you continue where you "
           "stopped."),
    ("code", "from brandkit.widgets import Comparison\n\n"
             "votes_file = run.path(\"compare\", \"votes.jsonl\")\n"
             "Comparison(comparison[\"generations\"], votes_file, measures=comparison[\"per_generation\"])"),
    ("md", """## What the votes and the edits say

A vote for one side is a win for it. A **tie** or a **both bad** counts half a win for each side: neither
answer was preferred, so it is a draw, and it pulls the win rate towards 50% (many "both bad" votes also
say that neither model writes well enough yet). The 95% interval resamples *requests*, not votes: five
people voting on the same request are not five independent tests. The edits say how much of each
contender's drafts survived (the share of their characters kept) and how long the editing took. Vote and
edit above, then run these two cells again."""),
    ("code", "from brandkit.compare import EditStore, VoteStore\nfrom brandkit.lessons import edits_sentence, "
             "votes_sentence\n\nvotes = VoteStore(votes_file).votes()\nprint(votes_sentence(votes))"),
    ("code", "edits = EditStore(run.path(\"compare\", \"edits.jsonl\")).edits()\nprint(edits_sentence(edits))"),
    ("md", "## Playground\n\nType any request and watch the three contenders answer side by side as they "
           "write. Set the sampling with the sliders (temperature 0 is greedy: the same answer every time). "
           "**Keep** saves an answer, its request and the settings to `compare/playground.jsonl` in the run folder."),
    ("code", "from brandkit.widgets import Playground\n\n"
             "Playground.from_comparison(comparison, run.dir, config.compare)"),
    ("code", "report_path = run.report()\nprint(\"Share this file:\", report_path)"),
    ("md", "## Checkpoint\n\nThree contenders measured, perplexity for the two that share the training prompt, the "
           "verdict in a sentence, and a report to share that runs no script."),
    ("code", r'''assert [r["contender"] for r in metrics["contenders"]] == ["generic", "prompted", "tuned"]
assert set(metrics["perplexity"]) == {"generic", "tuned"}
assert metrics["verdict"].endswith(".") and "tuned" in metrics["verdict"]
assert report_path.exists() and "<script" not in report_path.read_text().lower()
print("Compare OK:", metrics["verdict"])'''),
    *exercises(
        ("Start here",
         "Is the tuned model better than the generic model given your best hand-written prompt, and by how much? "
         "Read the style-score lead with its interval, and the prompt lengths beside it.",
         "in smoke mode six training steps move the model only a little: expect leads of a few hundredths. "
         "Against the prompted contender the interval usually includes 0, no evidence either way, which is the "
         "right reading of a rehearsal; against the generic model with the same short prompt it may just clear "
         "0. In full mode a good result is a lead over the prompted contender whose whole interval is above 0. "
         "Either way, look at the price: the prompted contender's prompt runs to hundreds of tokens (about a "
         "thousand on SmolLM2), the tuned model's to a few dozen.",
         r'''
from brandkit.lessons import style_gap

table = comparison["contenders"]
gaps = {other: style_gap(comparison["per_generation"], "tuned", other) for other in ("prompted", "generic")}
for other, gap in gaps.items():
    print(f"tuned - {other}: {gap['gap']:+.2f} (95% interval {gap['low']:+.2f} to {gap['high']:+.2f}, "
          f"{gap['requests']} requests); prompts of {table.loc['tuned', 'prompt_tokens']:.0f} against "
          f"{table.loc[other, 'prompt_tokens']:.0f} tokens")
    assert gap["low"] <= gap["gap"] <= gap["high"] and gap["requests"] == metrics["prompts"]
lead = gaps["prompted"]
print(f"Answer 1: the tuned model's lead over the prompted generic model is {lead['gap']:+.2f}, "
      + ("clearly above 0" if lead["low"] > 0 else "not clearly above 0"))'''),
        ("Go further",
         "How do ties and \"both bad\" count? Work out by hand the win rate of 3 wins, 1 loss and 2 \"both bad\", "
         "then check it with brandkit. How sure can six votes make you?",
         "(3 + ½ × 2) / 6 = 4/6, a win rate of 67%, and an interval so wide it includes 50%: six votes on six "
         "requests cannot show that either side is better. Then ask a colleague to vote above under their own "
         "name: `vote_results(votes)[\"agreement\"]` shows how often you agreed (Cohen's kappa corrects that for "
         "chance).",
         r'''
from brandkit.compare import vote_results

winners = ["tuned", "tuned", "tuned", "prompted", "both_bad", "both_bad"]
example = [{"A": "tuned", "B": "prompted", "winner": w, "choice": w, "rater": "you", "item_id": f"request-{n}",
            "sample": 0} for n, w in enumerate(winners)]
[pair] = vote_results(example)["pairs"]
print(votes_sentence(example))
assert pair["rate"] == (3 + 0.5 * 2) / 6 and pair["low"] < 0.5 < pair["high"]
print(f"Answer 2: a win rate of {pair['rate']:.0%}, 95% interval {pair['low']:.0%} to {pair['high']:.0%}")'''),
        ("Your own data",
         "Try the requests you really need (next month's newsletter, a product launch) on the tuned model, before "
         "you add them to `eval_prompts` in your `brand.yaml`.",
         "one draft per request, written as the tuned contender writes: with the one-line prompt it was trained "
         "with. In smoke mode it reads much like the generic model's; in full mode like the brand, and, like any "
         "small model, it invents facts: read before you send. Requests worth keeping go in `eval_prompts` with "
         "the answer you would send as `reference`, and this notebook measures them next time.",
         r'''
import brandkit

requests = ["Write a short email inviting our regular customers to an open evening next month.",
            "Write a short announcement of our new opening hours."]
for request in requests:
    draft = brandkit.write(request, run_dir=run.dir, max_new_tokens=config.compare.max_new_tokens)
    print(f"> {request}\n{draft}\n")
    assert isinstance(draft, str)
print(f"Answer 3: {len(requests)} drafts from the tuned model in {run.dir}")'''),
    ),
]

NOTEBOOKS["05_export"] = [
    ("md", header(
        "05_export", "05 · Export: take the model home",
        ["write with the tuned model from Python, in one call",
         "save the adapter, and a merged model that needs no extra libraries",
         "make a GGUF file and an Ollama Modelfile to run the model on a laptop",
         "run the exported file, from Python and with Ollama or llama.cpp"],
        "10 minutes", "5 minutes", "the adapter from `03_finetune` (trained here if missing).",
        "The adapter is small (megabytes) and rides on top of the base model. To run the model somewhere "
        "else you can merge it into the base model, convert it to GGUF for llama.cpp and Ollama, and write "
        "an Ollama Modelfile that uses the right chat template and stop tokens (the wrong ones are the most "
        "common reason a fine-tuned model rambles on in Ollama). The same steps from a terminal: "
        "`brandkit export --out <run folder>`.")),
    ("md", BACK + "\n\n" + FRESH_RUNTIME),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"compare\")\nadapter = run.path(\"train\", \"adapter\")"),
    ("md", "## Write with it, from Python\n\nOne call writes with your tuned model: `brandkit.write(request, "
           "run_dir=...)`. It loads the adapter from the run folder once (later calls are quick), asks with the "
           "system prompt the adapter was trained with (recorded in `train/adapter/brandkit_train.yaml`), and "
           "returns the draft as text. `temperature=0` gives the same draft every time; `max_new_tokens` caps "
           "its length. Nothing else is needed to use the model in your own scripts."),
    ("code", "import brandkit\n\nrequest = run.brand.eval_prompts[0].prompt\n"
             "draft = brandkit.write(request, run_dir=run.dir, max_new_tokens=config.compare.max_new_tokens)\n"
             "print(f\"> {request}\\n\\n{draft}\")"),
    ("md", "## A merged 16-bit model\n\nThe adapter folded into the base model: one folder that loads with "
           "plain transformers. A model trained in 4 bits (on a T4) is merged onto the 16-bit weights its "
           "4-bit copy was made from, so nothing is rounded to 4 bits twice."),
    ("code", "from brandkit.export import merge_adapter\n\nmerged = merge_adapter(adapter, run.path(\"export\", \"merged\"))\n"
             "sorted(p.name for p in merged.iterdir())"),
    ("md", "## GGUF\n\nGGUF is the one-file format llama.cpp and Ollama run. brandkit writes it with llama.cpp's "
           "own converter, on any machine and without compiling anything (the converter is fetched once from "
           "PyPI; `make setup` already did). `q8_0` is half the size of 16 bits at nearly the same quality. The "
           "smaller k-quants (`q4_k_m`, a quarter) need llama.cpp's compiled quantizer: on a GPU runtime set "
           "`QUANTIZATION = \"q4_k_m\"` and Unsloth builds it (a few minutes, with a network)."),
    ("code", "from pathlib import Path\n\nfrom brandkit.export import CONVERTER_TYPES, export_gguf\n\n"
             "QUANTIZATION = \"q8_0\"  # f16, bf16, f32, q8_0 anywhere; q4_k_m on a GPU runtime\n"
             "gguf = export_gguf(adapter, run.path(\"export\"), QUANTIZATION, name=Path(str(config.brand)).name,\n"
             "                   merged_dir=merged if QUANTIZATION in CONVERTER_TYPES else None)\n"
             "print(gguf, f\"{gguf.stat().st_size / 2**20:.0f} MB\")"),
    ("md", "## An Ollama Modelfile\n\nIt names the GGUF file, and its template and stop tokens come from the tuned "
           "model's own chat template (ChatML for SmolLM2 and Qwen, Llama 3's for Llama); its system prompt is the "
           "one the adapter was trained with."),
    ("code", "from brandkit.export import write_modelfile\n\n"
             "modelfile = write_modelfile(merged, run.path(\"export\", \"Modelfile\"), gguf.name, brand=run.brand)\n"
             "print(modelfile.read_text())"),
    ("md", "## Run it\n\nDownload the GGUF file and the Modelfile (on Colab: the folder icon on the left, or the "
           "run folder on Drive), put them in one folder, and on a computer with [Ollama](https://ollama.com) "
           "or [llama.cpp](https://github.com/ggml-org/llama.cpp):"),
    ("code", "from brandkit.export import how_to_run\n\nprint(how_to_run(gguf, modelfile, \"my-brand\"))"),
    ("md", "## The exported file, from Python\n\ntransformers reads GGUF too. Loading the file you will take home "
           "and asking it for an email, with the system prompt the adapter was trained with, checks the export end "
           "to end. transformers reads the whole file four times (the tokenizer, its "
           "settings, the model's, the weights); brandkit's `gguf_parsed_once` lets them share the first read (8 s "
           "instead of 23 on a 2-core laptop CPU)."),
    ("code", "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
             "from brandkit.models import gguf_parsed_once\n"
             "from brandkit.writer import trained_system_prompt\n\n"
             "with gguf_parsed_once():\n"
             "    gguf_tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)\n"
             "    gguf_model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)\n"
             "messages = [{\"role\": \"system\", \"content\": trained_system_prompt(adapter)},\n"
             "            {\"role\": \"user\", \"content\": run.brand.eval_prompts[0].prompt}]\n"
             "text = gguf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)\n"
             "ids = gguf_tokenizer(text, return_tensors=\"pt\")[\"input_ids\"]\n"
             "answer = gguf_model.generate(ids, attention_mask=ids.new_ones(ids.shape), max_new_tokens=60, do_sample=False)\n"
             "print(gguf_tokenizer.decode(answer[0, ids.shape[1]:], skip_special_tokens=True))"),
    ("md", "## Checkpoint\n\nThe tuned model wrote a draft from Python, and the merged model, the GGUF file and a "
           "Modelfile with its stop tokens are in the run folder's `export/`; the GGUF file answered."),
    ("code", "assert isinstance(draft, str) and draft.strip(), \"brandkit.write returned no draft\"\n"
             "assert (merged / \"config.json\").exists() and (merged / \"tokenizer.json\").exists()\n"
             "assert gguf.is_file() and modelfile.read_text().startswith(f\"FROM ./{gguf.name}\\n\")\n"
             "assert \"PARAMETER stop\" in modelfile.read_text() and answer.shape[1] > ids.shape[1]\n"
             "print(\"Export OK:\", gguf, modelfile)"),
    *exercises(
        ("Start here",
         "Open the Modelfile: which stop tokens does it use, and why do they matter?",
         "for SmolLM2 (ChatML) `<|im_end|>`, for Llama 3 `<|eot_id|>`: the token the model was trained to end its "
         "answer with (03's mask showed it learned). Without it as a stop, Ollama lets the model run on and "
         "write the next turn of the conversation itself.",
         r'''
from brandkit.models import load_tokenizer

stops = [line.split('"')[1] for line in modelfile.read_text().splitlines() if line.startswith("PARAMETER stop")]
end_of_turn = load_tokenizer(str(merged)).eos_token
print("stop tokens:", stops, "| the model's end-of-turn token:", end_of_turn)
assert end_of_turn in stops
print(f"Answer 1: the Modelfile stops at {end_of_turn}, the token the model learned to end its answers with")'''),
        ("Go further",
         "Export with `f16` as well and compare the file sizes, and the two files' answers to the same request.",
         "the `f16` file is a little under twice the size of `q8_0` (16 bits a weight against about 8.5), and "
         "with greedy decoding the two answers start the same and may drift apart after a while: `q8_0` rounds "
         "the weights a little. (On a GPU runtime, `q4_k_m` is about a quarter of `f16`.)",
         r'''
f16 = export_gguf(adapter, run.path("export"), "f16", name=Path(str(config.brand)).name, merged_dir=merged)
ratio = f16.stat().st_size / gguf.stat().st_size
print(f"{gguf.name}: {gguf.stat().st_size / 2**20:.0f} MB; {f16.name}: {f16.stat().st_size / 2**20:.0f} MB "
      f"({ratio:.2f}x)")
with gguf_parsed_once():
    f16_model = AutoModelForCausalLM.from_pretrained(str(f16.parent), gguf_file=f16.name)
f16_answer = f16_model.generate(ids, attention_mask=ids.new_ones(ids.shape), max_new_tokens=60, do_sample=False)
print("q8_0:", gguf_tokenizer.decode(answer[0, ids.shape[1]:], skip_special_tokens=True))
print("f16: ", gguf_tokenizer.decode(f16_answer[0, ids.shape[1]:], skip_special_tokens=True))
assert 1.6 < ratio < 2.1
print(f"Answer 2: f16 is {ratio:.2f}x the size of q8_0")'''),
        ("Your own data",
         "Draft a week's real writing with `brandkit.write` and edit it as you would before sending. Note what you "
         "still change, and add the finished texts to your exports for the next round.",
         "a file `drafts.md` in the run folder, one draft per request, to edit. What you change week after week "
         "is what the next round of training data should teach: the edited texts are your best new examples.",
         r'''
week = ["Write this week's newsletter introduction: what is new with us.",
        "Reply to a customer asking whether we ship abroad.",
        "Write a short post announcing our holiday opening hours."]
drafts = run.path("drafts.md")
drafts.write_text("".join(f"## {request}\n\n{brandkit.write(request, run_dir=run.dir, max_new_tokens=config.compare.max_new_tokens)}\n\n"
                          for request in week), encoding="utf-8")
print(drafts.read_text(encoding="utf-8")[:2000])
assert all(f"## {request}" in drafts.read_text(encoding="utf-8") for request in week)
print(f"Answer 3: {len(week)} drafts to edit in {drafts}")'''),
    ),
]


def build(name: str, cells: list[tuple[str, str]]):
    notebook = nbformat.v4.new_notebook()
    for kind, source in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        if kind == "code" and source is SETUP:
            cell.metadata["tags"] = ["parameters"]  # papermill and nbclient runs can set MODE, BRAND, RUN_DIR here
        if kind == "answer":  # an exercise's worked answer: run by the tests, hidden from the learner until opened
            cell.metadata.update({"tags": ["answer"], "jupyter": {"source_hidden": True}, "cellView": "form"})
        notebook.cells.append(cell)
    notebook.metadata.update({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
        "colab": {"provenance": [], "gpuType": "T4", "name": f"{name}.ipynb"},
    })
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"{name}-{number:02d}"  # stable ids: regenerating changes nothing that did not change
    return notebook


def main() -> None:
    folder = ROOT / "notebooks"
    folder.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), folder / f"{name}.ipynb")
        print(f"notebooks/{name}.ipynb: {len(cells)} cells")


if __name__ == "__main__":
    main()
