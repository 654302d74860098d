"""The bundled sample brands: distinct voices, real export formats, and a generic pool kept apart."""

from __future__ import annotations

import json

import pytest

from brandkit.config import BrandKit, generic_pool_path, sample_brands

BRANDS = ["ember-coffee", "ledgerline", "spoke-sprocket"]


@pytest.fixture(scope="module")
def corpora(samples):
    from brandkit.clean import clean
    from brandkit.collect import collect

    texts = {}
    for slug in BRANDS:
        collected = collect(samples / slug / "exports", progress=False)
        texts[slug] = clean(collected.to_dataset(), brand=BrandKit.load(slug)).dataset["text"]
    texts["generic"] = [json.loads(line)["text"] for line in generic_pool_path().read_text().splitlines()]
    return texts


def test_three_brands_with_complete_kits():
    assert sample_brands() == BRANDS
    for slug in BRANDS:
        kit = BrandKit.load(slug)
        assert kit.name and kit.voice and kit.sign_off and kit.staff and kit.preferred_terms and kit.banned_terms
        assert len(kit.eval_prompts) >= 15
        assert sum(bool(p.reference) for p in kit.eval_prompts) >= 10
        assert {p.kind for p in kit.eval_prompts} >= {"email", "blog", "product", "chat", "manual"}


def test_generic_pool_is_large_and_never_names_a_brand():
    rows = [json.loads(line) for line in generic_pool_path().read_text().splitlines()]
    assert len(rows) >= 200
    text = " ".join(r["text"] + " " + r["title"] for r in rows).lower()
    for name in ("ember street", "ledgerline", "spoke & sprocket", "larkfield", "ashby vale", "millbrook"):
        assert name not in text


def test_voices_are_distinct(corpora):
    """A character n-gram classifier tells the three brands and the generic pool apart."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    texts, labels = [], []
    for label, items in corpora.items():
        items = items[:150] if label == "generic" else items
        texts += items
        labels += [label] * len(items)
    pipeline = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True),
                             LogisticRegression(max_iter=2000, C=4.0))
    scores = cross_val_score(pipeline, texts, labels, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    accuracy = scores.mean()
    print(f"\nstyle classifier, 4 classes (3 brands + generic), 5-fold accuracy: {accuracy:.3f} (chance 0.25)")
    assert accuracy >= 0.9


def test_each_brand_has_the_planted_mess(samples):
    import zipfile

    raw = {}
    for slug in BRANDS:
        files = [p for p in (samples / slug / "exports").rglob("*") if p.is_file()]
        raw[slug] = b"".join(p.read_bytes() for p in files)
        for archive in (p for p in files if p.suffix == ".zip"):  # pages saved in a zip
            with zipfile.ZipFile(archive) as z:
                raw[slug] += b"".join(z.read(name) for name in z.namelist())
    for slug, data in raw.items():
        assert b"example.com" in data and b"555" in data, slug
        assert b"Unsubscribe" in data and b"View this email in your browser" in data, slug
        assert b"wrote:" in data and b"quoted-printable" in data and b"base64" in data, slug
        assert b"<!-- wp:paragraph -->" in data and b"<wp:status><![CDATA[draft]]>" in data, slug
        assert b"Body (HTML)" in data and b"<nav" in data, slug
    assert b"windows-1252" in raw["ember-coffee"] and b"=?utf-8?" in raw["ember-coffee"]
