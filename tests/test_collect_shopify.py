"""Collect Shopify: a product export's variant rows fold into one record per product."""

from __future__ import annotations

from brandkit.collect import collect
from tests.collect_fixtures import by_source


def test_shopify_variants_fold_into_one_product(fixture_dir):
    records = by_source(collect(fixture_dir, progress=False))["shop/products_export.csv"]
    assert [r.title for r in records] == ["Stoneware Mug", "Serving Bowl"]
    mug = records[0]
    assert mug.kind == "product" and mug.importer == "shopify" and mug.tags == ["mug", "gift"]
    assert [v["option"] for v in mug.extra["variants"]] == ["Blue", "Green", "Sand"]
    assert mug.extra["vendor"] == "The Shop" and mug.extra["type"] == "Mugs"
