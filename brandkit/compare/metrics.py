"""Metrics: the brand-style score (and how far to trust it), stylometrics and similarity to the reference.

The style classifier learns from the brand's training texts against most of the generic pool. Its
trust is measured on texts it never saw: the brand's held-out texts and the rest of the generic
pool give its held-out accuracy, and the brand's held-out texts give the brand's reference score
(the classifier's own training texts would score near 1 and flatter every contender).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from ..config import BrandKit, BrandkitError, generic_pool_path
from .generate import Generation

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
        self.trained_on = (len(brand_texts), len(other_texts))

    def score(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        return self.pipeline.predict_proba([t or " " for t in texts])[:, 1].tolist()

    def accuracy(self, brand_texts: list[str], other_texts: list[str]) -> dict[str, Any]:
        """Balanced accuracy on texts it was not trained on (the mean of the two classes' hit rates)."""
        brand_hits = [s >= 0.5 for s in self.score(brand_texts)]
        other_hits = [s < 0.5 for s in self.score(other_texts)]
        rates = [sum(h) / len(h) for h in (brand_hits, other_hits) if h]
        return {"heldout_accuracy": sum(rates) / len(rates) if rates else float("nan"),
                "brand_recall": sum(brand_hits) / len(brand_hits) if brand_hits else float("nan"),
                "other_rejected": sum(other_hits) / len(other_hits) if other_hits else float("nan"),
                "heldout_brand_texts": len(brand_hits), "heldout_other_texts": len(other_hits),
                "trained_brand_texts": self.trained_on[0], "trained_other_texts": self.trained_on[1]}


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


def split_generic(texts: list[str], heldout_share: float = 0.2) -> tuple[list[str], list[str]]:
    """The generic pool split by a hash of each text: most to train on, the rest to test the classifier."""
    train, held = [], []
    for text in texts:
        bucket = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if bucket < heldout_share else train).append(text)
    return train, held


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
    # the sign-off's opening phrase ("stay warm", "kind regards", "keep the rubber side down"): its
    # line breaks are the writer's, so a sign-off set on one line still counts when written on two
    opening = re.split(r"[\n,!.?]", brand.sign_off.strip().lower())[0].strip() if brand.sign_off.strip() else ""
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
        "sign_off": float(bool(opening) and opening in " ".join(text.lower().split())),
    }


def rouge_l(prediction: str, reference: str) -> float:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].fmeasure


def measure(generations: list[Generation], brand: BrandKit, brand_texts: list[str],
            other_texts: list[str] | None = None, heldout_brand_texts: list[str] | None = None):
    """Per generation: style score, stylometrics, ROUGE-L; the brand's reference rows; the classifier's trust.

    `brand_texts` train the classifier; `heldout_brand_texts` (the brand's held-out answers) give the
    reference score and, with the held-out part of the generic pool, the classifier's accuracy. Without
    held-out texts the reference falls back to the training texts, and says so.
    """
    import pandas as pd

    others = other_texts if other_texts is not None else generic_texts()
    train_others, held_others = split_generic(others)
    scorer = StyleScorer(brand_texts, train_others)
    scores = scorer.score([g.text for g in generations])
    rows = []
    for g, score in zip(generations, scores, strict=True):
        rows.append({"item_id": g.item_id, "kind": g.kind, "source": g.source, "model": g.model, "sample": g.sample,
                     "prompt_tokens": g.prompt_tokens, "finished": float(g.finished), "style_score": score,
                     **stylometrics(g.text, brand),
                     "rouge_l": rouge_l(g.text, g.reference) if g.reference else float("nan")})
    reference_texts = list(heldout_brand_texts or []) or brand_texts
    reference = pd.DataFrame([{"model": "brand", "style_score": s, **stylometrics(t, brand)}
                              for t, s in zip(reference_texts, scorer.score(reference_texts), strict=True)])
    classifier = scorer.accuracy(list(heldout_brand_texts or []), held_others)
    classifier["reference_from"] = "heldout" if heldout_brand_texts else "training texts (no held-out texts)"
    return pd.DataFrame(rows), reference, classifier


STYLE_COLUMNS = ["style_score", "words", "words_per_sentence", "reading_ease", "you_per_100", "we_per_100",
                 "exclamations_per_sentence", "emoji_per_100", "preferred_terms_per_100", "banned_terms",
                 "sign_off"]


def style_summary(per_generation, reference, order: tuple[str, ...] = ("generic", "prompted", "tuned", "base")):
    """Mean of every measure per contender and the brand reference (a tidy frame: one row per measure)."""
    import pandas as pd

    means = per_generation.groupby("model")[STYLE_COLUMNS + ["rouge_l", "finished"]].mean().T
    means["brand"] = reference[STYLE_COLUMNS].mean()
    columns = [c for c in (*order, "brand") if c in means.columns]
    return pd.DataFrame(means[columns]).rename_axis("measure").reset_index()
