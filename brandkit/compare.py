"""Compare: the untuned base and the tuned model on the same held-out prompts, measured.

One model is in memory: the base with the adapter loaded, switched off for "base" and on for
"tuned". Both use the same sampling settings and seeds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .chat import end_of_turn_ids, pad_batch, tokenize_example
from .config import BrandKit, BrandkitError, CompareConfig, generic_pool_path
from .models import load_tuned


@dataclass
class EvalItem:
    """One prompt to answer: the messages before the answer, and the brand's own answer if known."""

    id: str
    kind: str
    source: str                      # brand_kit | heldout
    messages: list[dict[str, str]]
    reference: str = ""

    @property
    def prompt(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


def eval_items(brand: BrandKit, heldout=None, system_prompt: str | None = None, max_heldout: int = 24) -> list[EvalItem]:
    """The brand kit's evaluation prompts, then held-out examples (their last answer as reference)."""
    system = brand.system_prompt if system_prompt is None else system_prompt
    items = []
    for number, prompt in enumerate(brand.eval_prompts, 1):
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt.prompt.strip()}]
        items.append(EvalItem(f"kit-{number:02d}", prompt.kind, "brand_kit", messages, prompt.reference.strip()))
    for example in list(heldout or [])[:max_heldout]:
        messages = list(example["messages"])
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        items.append(EvalItem(f"held-{example['id']}", example["kind"], "heldout", messages[:last],
                              messages[last]["content"]))
    return items


def generate(model, tokenizer, items: list[EvalItem], config: CompareConfig, adapter: bool,
             batch_size: int | None = None, progress: bool = True) -> list[list[str]]:
    """Answers for every item (config.samples_per_prompt each), batched with left padding."""
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    stop_ids = end_of_turn_ids(tokenizer)
    batch_size = batch_size or config.batch_size
    outputs: list[list[str]] = []
    label = "tuned" if adapter else "base"
    for start in tqdm(range(0, len(items), batch_size), desc=f"Generating ({label})", disable=not progress):
        batch = items[start:start + batch_size]
        prompts = [tokenizer.apply_chat_template(item.messages, tokenize=False, add_generation_prompt=True)
                   for item in batch]
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        torch.manual_seed(config.seed + start)  # the same seed for base and tuned, batch by batch
        with torch.inference_mode(), _adapter(model, adapter):
            generated = model.generate(
                **inputs, max_new_tokens=config.max_new_tokens, do_sample=config.do_sample,
                temperature=config.temperature if config.do_sample else None,
                top_p=config.top_p if config.do_sample else None, repetition_penalty=config.repetition_penalty,
                num_return_sequences=config.samples_per_prompt, eos_token_id=stop_ids,
                pad_token_id=tokenizer.pad_token_id)
        new_tokens = generated[:, inputs["input_ids"].shape[1]:]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i in range(len(batch)):
            outputs.append([t.strip() for t in texts[i * config.samples_per_prompt:(i + 1) * config.samples_per_prompt]])
    return outputs


class _adapter:
    """Context: the PEFT adapter on (tuned) or off (base)."""

    def __init__(self, model, enabled: bool):
        self.model, self.enabled, self.context = model, enabled, None

    def __enter__(self):
        if not self.enabled and hasattr(self.model, "disable_adapter"):
            self.context = self.model.disable_adapter()
            self.context.__enter__()

    def __exit__(self, *exc):
        if self.context is not None:
            self.context.__exit__(*exc)


def perplexity_of(losses: list[float]) -> float:
    return math.exp(sum(losses) / len(losses)) if losses else float("nan")


def heldout_perplexity(model, tokenizer, heldout, adapter: bool, max_length: int = 512,
                       batch_size: int = 8) -> float:
    """Perplexity of the brand's own held-out answers (assistant tokens only)."""
    import torch

    rows = [tokenize_example(tokenizer, ex["messages"], max_length) for ex in heldout]
    rows = [r for r in rows if 1 in r["assistant_masks"]]
    total_loss, total_tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        ids, labels, attention = pad_batch(batch, tokenizer.pad_token_id)
        with torch.inference_mode(), _adapter(model, adapter):
            logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits.float()
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(logits.device)
        loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                 shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
        total_loss += loss.item()
        total_tokens += int((shift_labels != -100).sum())
    return perplexity_of([total_loss / total_tokens]) if total_tokens else float("nan")


@dataclass
class Generation:
    item_id: str
    kind: str
    source: str
    prompt: str
    reference: str
    model: str                       # base | tuned
    sample: int
    text: str


def run_generations(model, tokenizer, items: list[EvalItem], config: CompareConfig,
                    progress: bool = True) -> list[Generation]:
    rows = []
    for label, adapter in (("base", False), ("tuned", True)):
        for item, texts in zip(items, generate(model, tokenizer, items, config, adapter, progress=progress),
                               strict=True):
            rows.extend(Generation(item.id, item.kind, item.source, item.prompt, item.reference, label, n, text)
                        for n, text in enumerate(texts))
    return rows


def save_generations(generations: list[Generation], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for g in generations:
            handle.write(json.dumps(asdict(g), ensure_ascii=False) + "\n")
    return path


def load_generations(path: str | Path) -> list[Generation]:
    with open(path, encoding="utf-8") as handle:
        return [Generation(**json.loads(line)) for line in handle if line.strip()]


# --------------------------------------------------------------------------- automatic measures

EMOJI = re.compile("[\U0001F300-\U0001FAFF\U00002600-\U000027BF\U0001F000-\U0001F2FF\U00002B50\U00002764]")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


class StyleScorer:
    """How much a text sounds like the brand: TF-IDF character and word n-grams + logistic regression.

    Trained on the brand's own documents against generic business text (and other brands' where
    given) and against the brand's own documents with their words shuffled: those keep the brand's
    vocabulary but lose its sentences, so the classifier must use word order, and a text made of
    the brand's words in nonsense order scores low. `score` is the probability that a text is the brand's.
    """

    def __init__(self, brand_texts: list[str], other_texts: list[str], seed: int = 0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        if len(brand_texts) < 5 or len(other_texts) < 5:
            raise BrandkitError("the style classifier needs at least 5 brand and 5 other documents")
        self.pipeline = make_pipeline(
            make_union(
                # across word boundaries (not char_wb): n-grams that span two words carry word order
                TfidfVectorizer(analyzer="char", ngram_range=(3, 5), min_df=2, sublinear_tf=True, max_features=100000),
                TfidfVectorizer(analyzer="word", ngram_range=(1, 3), min_df=2, sublinear_tf=True,
                                token_pattern=r"(?u)\b\w+\b|[!?]")),
            # weak regularisation: a brand's voice is many small habits, not a few strong words
            LogisticRegression(max_iter=3000, C=100.0, class_weight="balanced", random_state=seed))
        shuffled = [shuffle_words(text, seed + i) for i, text in enumerate(brand_texts)]
        texts = brand_texts + other_texts + shuffled
        labels = [1] * len(brand_texts) + [0] * (len(other_texts) + len(shuffled))
        # shuffled copies count less than real other writing: they teach order, not what the brand is not
        weights = [1.0] * (len(brand_texts) + len(other_texts)) + [0.3] * len(shuffled)
        self.pipeline.fit(texts, labels, logisticregression__sample_weight=weights)

    def score(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        return self.pipeline.predict_proba([t or " " for t in texts])[:, 1].tolist()


def shuffle_words(text: str, seed: int = 0) -> str:
    """The same words in a random order: the brand's vocabulary without its sentences."""
    import random

    tokens = text.split()
    random.Random(seed).shuffle(tokens)
    return " ".join(tokens)


def generic_texts(limit: int | None = None) -> list[str]:
    path = generic_pool_path()
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows][:limit]


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9'’]+", text)


def term_hits(text: str, terms: list[str]) -> int:
    lowered = text.lower()
    return sum(len(re.findall(rf"(?<!\w){re.escape(term.lower())}(?!\w)", lowered)) for term in terms if term)


@functools.lru_cache(maxsize=1)
def _hyphenator():
    import pyphen

    return pyphen.Pyphen(lang="en_US")


def reading_ease(tokens: list[str], sentences: int) -> float:
    """Flesch reading ease: higher is easier (60-70 is plain English).

    Syllables come from pyphen's hyphenation dictionary, which ships inside the wheel; textstat
    needs NLTK's cmudict, a download that fails offline."""
    if not tokens or sentences <= 0:
        return 0.0
    hyphenator = _hyphenator()
    syllables = sum(len(hyphenator.positions(token.lower())) + 1 for token in tokens)
    return 206.835 - 1.015 * (len(tokens) / sentences) - 84.6 * (syllables / len(tokens))


def stylometrics(text: str, brand: BrandKit) -> dict[str, float]:
    """Measurable habits of a text, per 100 words where a rate makes sense."""
    tokens = words(text)
    n = max(len(tokens), 1)
    sentences = max(len(SENTENCE_END.findall(text)), 1)
    lowered = [t.lower() for t in tokens]
    sign_off = brand.sign_off.strip().lower()
    first_line = re.split(r"[\n,]", sign_off)[0].strip() if sign_off else ""
    return {
        "words": float(len(tokens)),
        "words_per_sentence": len(tokens) / sentences,
        "reading_ease": reading_ease(tokens, sentences),
        "you_per_100": 100 * sum(t in ("you", "your", "you're", "yours") for t in lowered) / n,
        "we_per_100": 100 * sum(t in ("we", "our", "us", "we're", "ours") for t in lowered) / n,
        "exclamations_per_sentence": text.count("!") / sentences,
        "emoji_per_100": 100 * len(EMOJI.findall(text)) / n,
        "preferred_terms_per_100": 100 * term_hits(text, brand.preferred_terms) / n,
        "banned_terms": float(term_hits(text, brand.banned_terms)),
        "sign_off": float(bool(first_line) and first_line in text.lower()),
    }


def rouge_l(prediction: str, reference: str) -> float:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].fmeasure


def measure(generations: list[Generation], brand: BrandKit, brand_texts: list[str],
            other_texts: list[str] | None = None):
    """One row per generation with its style score, stylometrics and similarity to the reference."""
    import pandas as pd

    scorer = StyleScorer(brand_texts, (other_texts if other_texts is not None else generic_texts()))
    scores = scorer.score([g.text for g in generations])
    rows = []
    for g, score in zip(generations, scores, strict=True):
        rows.append({"item_id": g.item_id, "kind": g.kind, "source": g.source, "model": g.model, "sample": g.sample,
                     "style_score": score, **stylometrics(g.text, brand),
                     "rouge_l": rouge_l(g.text, g.reference) if g.reference else float("nan")})
    reference = pd.DataFrame([{"model": "brand", "style_score": s, **stylometrics(t, brand)}
                              for t, s in zip(brand_texts, scorer.score(brand_texts), strict=True)])
    return pd.DataFrame(rows), reference


STYLE_COLUMNS = ["style_score", "words", "words_per_sentence", "reading_ease", "you_per_100", "we_per_100",
                 "exclamations_per_sentence", "emoji_per_100", "preferred_terms_per_100", "banned_terms",
                 "sign_off"]


def style_summary(per_generation, reference):
    """Mean of every measure as base / tuned / brand reference (a tidy frame: one row per measure)."""
    import pandas as pd

    means = per_generation.groupby("model")[STYLE_COLUMNS + ["rouge_l"]].mean().T
    means["brand"] = reference[STYLE_COLUMNS].mean()
    columns = [c for c in ("base", "tuned", "brand") if c in means.columns]
    return pd.DataFrame(means[columns]).rename_axis("measure").reset_index()


# --------------------------------------------------------------------------- votes

VOTE_CHOICES = {"A": "A better", "B": "B better", "tie": "Tie", "both_bad": "Both bad"}


def blind_sides(item_id: str, sample: int, rater: str, seed: int = 3407) -> tuple[str, str]:
    """Which model is shown as A and which as B: random per item and rater, and the same after a restart."""
    digest = hashlib.sha256(f"{seed}|{rater}|{item_id}|{sample}".encode()).digest()
    return ("tuned", "base") if digest[0] % 2 else ("base", "tuned")


class VoteStore:
    """Blind votes, one JSON line each, appended and flushed to disk the moment they are cast."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def add(self, rater: str, item_id: str, sample: int, choice: str, sides: tuple[str, str],
            reason: str = "") -> dict[str, Any]:
        if choice not in VOTE_CHOICES:
            raise BrandkitError(f"unknown vote {choice!r} (one of {', '.join(VOTE_CHOICES)})")
        if not rater.strip():
            raise BrandkitError("a vote needs the rater's name")
        winner = {"A": sides[0], "B": sides[1]}.get(choice, choice)
        vote = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rater": rater.strip(),
                "item_id": item_id, "sample": sample, "A": sides[0], "B": sides[1], "choice": choice,
                "winner": winner, "reason": reason.strip()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as handle:
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            # after a crash mid-write the last line is cut short: start a fresh line rather than join it
            handle.write(("\n" if torn else "") + json.dumps(vote, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return vote

    def votes(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash mid-write: every earlier vote still counts
        return out

    def voted(self, rater: str) -> set[tuple[str, int]]:
        return {(v["item_id"], v.get("sample", 0)) for v in self.votes() if v["rater"] == rater.strip()}


@dataclass
class WinRate:
    rate: float
    low: float
    high: float
    votes: int
    wins: int
    losses: int
    ties: int
    both_bad: int


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (successes may be fractional: ties count half)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(votes: list[dict[str, Any]], model: str = "tuned", other: str = "base") -> WinRate:
    """The model's win rate over the other: a win counts 1, a tie or "both bad" counts half."""
    relevant = [v for v in votes if {v["A"], v["B"]} == {model, other}]
    wins = sum(v["winner"] == model for v in relevant)
    losses = sum(v["winner"] == other for v in relevant)
    ties = sum(v["winner"] == "tie" for v in relevant)
    both_bad = sum(v["winner"] == "both_bad" for v in relevant)
    n = len(relevant)
    score = wins + 0.5 * (ties + both_bad)
    low, high = wilson_interval(score, n)
    return WinRate(score / n if n else float("nan"), low, high, n, wins, losses, ties, both_bad)


def votes_by_prompt(votes: list[dict[str, Any]]):
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for v in votes:
        row = rows.setdefault(v["item_id"], {"item_id": v["item_id"], "votes": 0, "tuned": 0, "base": 0, "tie": 0,
                                             "both_bad": 0, "reasons": []})
        row["votes"] += 1
        row[v["winner"]] = row.get(v["winner"], 0) + 1
        if v.get("reason"):
            row["reasons"].append(f"{v['rater']}: {v['reason']}")
    frame = pd.DataFrame(list(rows.values()))
    if len(frame):
        frame["reasons"] = frame["reasons"].map("; ".join)
    return frame


def rater_agreement(votes: list[dict[str, Any]]) -> dict[str, Any]:
    """Pairwise agreement (and Cohen's kappa) on the verdicts of raters who voted on the same items."""
    latest: dict[tuple[str, str, int], str] = {}
    for v in votes:
        latest[(v["rater"], v["item_id"], v.get("sample", 0))] = v["winner"]  # a re-vote replaces the old one
    raters = sorted({r for r, _, _ in latest})
    pairs = []
    for i, a in enumerate(raters):
        for b in raters[i + 1:]:
            shared = [(latest[(a, item, s)], latest[(b, item, s)]) for (r, item, s) in latest
                      if r == a and (b, item, s) in latest]
            if shared:
                pairs.append({"raters": f"{a} / {b}", "items": len(shared),
                              "agreement": sum(x == y for x, y in shared) / len(shared),
                              "kappa": cohen_kappa(shared)})
    mean = sum(p["agreement"] for p in pairs) / len(pairs) if pairs else float("nan")
    return {"raters": raters, "pairs": pairs, "mean_agreement": mean}


def cohen_kappa(pairs: list[tuple[str, str]]) -> float:
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    labels = {x for pair in pairs for x in pair}
    expected = sum((sum(a == l for a, _ in pairs) / n) * (sum(b == l for _, b in pairs) / n) for l in labels)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def bradley_terry(votes: list[dict[str, Any]], iterations: int = 500) -> list[tuple[str, float]]:
    """Bradley-Terry strengths from pairwise votes (ties half a win each), by Hunter's MM algorithm.

    Returned best first, as log-strengths scaled like Elo (400 / ln 10 per unit), centred on 1000.
    """
    models = sorted({v["A"] for v in votes} | {v["B"] for v in votes})
    wins = {m: 0.0 for m in models}
    games: Counter = Counter()
    for v in votes:
        a, b = v["A"], v["B"]
        games[frozenset((a, b))] += 1
        if v["winner"] in (a, b):
            wins[v["winner"]] += 1
        else:
            wins[a] += 0.5
            wins[b] += 0.5
    strength = {m: 1.0 for m in models}
    for _ in range(iterations):
        updated = {}
        for m in models:
            denominator = sum(n / (strength[m] + strength[o]) for pair, n in games.items() if m in pair
                              for o in pair - {m})
            updated[m] = max(wins[m], 1e-9) / denominator if denominator else strength[m]
        total = sum(updated.values())
        strength = {m: s * len(models) / total for m, s in updated.items()}
    logs = {m: math.log(s) for m, s in strength.items()}
    centre = sum(logs.values()) / len(logs) if logs else 0.0
    return sorted(((m, 1000 + 400 / math.log(10) * (x - centre)) for m, x in logs.items()),
                  key=lambda pair: -pair[1])


def vote_results(votes: list[dict[str, Any]]) -> dict[str, Any]:
    rate = win_rate(votes)
    models = {v["A"] for v in votes} | {v["B"] for v in votes}
    return {"win_rate": asdict(rate), "agreement": rater_agreement(votes),
            "bradley_terry": bradley_terry(votes) if len(models) > 2 else []}


# --------------------------------------------------------------------------- the stage

def compare_models(adapter_dir: str | Path, brand: BrandKit, examples, config: CompareConfig | None = None,
                   out_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Generate with base and tuned, measure both; generations are cached in out_dir."""
    config = config or CompareConfig()
    out = Path(out_dir) if out_dir is not None else None
    system = next((m["content"] for m in (examples["train"][0]["messages"] if len(examples["train"]) else [])
                   if m["role"] == "system"), "")
    items = eval_items(brand, examples["heldout"], system_prompt=system, max_heldout=config.max_heldout)
    model, tokenizer = load_tuned(adapter_dir)
    key = generation_key(adapter_dir, items, config)
    cached = out is not None and (out / "generations.jsonl").exists() and (out / "generations.key").exists() \
        and (out / "generations.key").read_text() == key
    if cached:
        generations = load_generations(out / "generations.jsonl")
    else:
        generations = run_generations(model, tokenizer, items, config, progress=progress)
    brand_texts = [ex["messages"][-1]["content"] for ex in examples["train"]]
    per_generation, reference = measure(generations, brand, brand_texts)
    summary = style_summary(per_generation, reference)
    style = per_generation.groupby("model")["style_score"].mean().to_dict()
    metrics = {
        "perplexity": {"base": heldout_perplexity(model, tokenizer, examples["heldout"], adapter=False),
                       "tuned": heldout_perplexity(model, tokenizer, examples["heldout"], adapter=True)},
        "style_score": {"base": style.get("base"), "tuned": style.get("tuned"),
                        "brand": float(reference["style_score"].mean())},
        "style": summary.to_dict("records"),
        "prompts": len(items), "generations": len(generations), "cached": bool(cached),
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if not cached:
            save_generations(generations, out / "generations.jsonl")
            (out / "generations.key").write_text(key)
        per_generation.to_csv(out / "per_generation.csv", index=False)
        reference.to_csv(out / "reference.csv", index=False)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return {"generations": generations, "metrics": metrics, "per_generation": per_generation,
            "reference": reference, "summary": summary}


def generation_key(adapter_dir: str | Path, items: list[EvalItem], config: CompareConfig) -> str:
    """Generations are reused only for the same adapter weights, prompts and sampling settings."""
    digest = hashlib.sha256()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        path = Path(adapter_dir) / name
        if path.exists():
            digest.update(path.read_bytes())
    digest.update(json.dumps([asdict(i) for i in items], sort_keys=True).encode())
    digest.update(json.dumps(asdict(config), sort_keys=True).encode())
    return digest.hexdigest()
