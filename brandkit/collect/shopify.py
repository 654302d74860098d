"""Shopify: a product export folded into one record per product (variant rows merged)."""

from __future__ import annotations

from typing import Any

from .base import FileContext, Record


def is_shopify(header: list[str]) -> bool:
    names = {h.lower() for h in header}
    return "handle" in names and ("body (html)" in names or "variant sku" in names)


def records_from_shopify(rows: list[dict[str, str]], ctx: FileContext) -> list[Record]:
    """One record per product: Shopify repeats the handle on a row per variant, details on the first."""
    products: dict[str, dict[str, Any]] = {}
    for row in rows:
        handle = (row.get("Handle") or "").strip()
        if not handle:
            ctx.notes["rows without a handle skipped"] += 1
            continue
        product = products.setdefault(handle, {"row": None, "variants": []})
        if product["row"] is None and (row.get("Title") or "").strip():
            product["row"] = row
        options = " / ".join(v for v in (row.get(f"Option{i} Value", "") for i in (1, 2, 3)) if v)
        if options or row.get("Variant SKU"):
            product["variants"].append({"option": options, "sku": row.get("Variant SKU", ""),
                                        "price": row.get("Variant Price", "")})
    records = []
    for handle, product in products.items():
        row = product["row"]
        if row is None:
            ctx.notes["variant rows without a product row skipped"] += 1
            continue
        body = (row.get("Body (HTML)") or "").strip()
        if not body:
            ctx.notes["products without a description skipped"] += 1
            continue
        if (row.get("Status") or "active").strip().lower() == "archived":
            ctx.notes["archived products skipped"] += 1
            continue
        records.append(ctx.record(
            kind="product", title=row["Title"].strip(), text=body, format="html", locator=f"product {handle}",
            author=row.get("Vendor", ""), tags=[t.strip() for t in (row.get("Tags") or "").split(",") if t.strip()],
            extra={"handle": handle, "vendor": row.get("Vendor", ""), "type": row.get("Type", ""),
                   "category": row.get("Product Category", ""), "variants": product["variants"]}))
    return records
