"""Render the authored sample content into the exports a shop owner really hands over.

    python scripts/build_samples.py            # rebuilds data/samples/*/exports and generic.jsonl

Reads data/authoring/<brand>.yaml (the brands' writing) and data/authoring/generic_*.yaml (the
generic pool) and writes, deterministically:

- mail: an mbox of newsletters and sent replies (multipart text/HTML, quoted-printable and base64,
  a non-UTF-8 charset, encoded subjects, quoted replies, signatures, disclaimers, an attachment,
  exact and near-duplicate newsletters, mojibake, too-short and foreign-language messages);
  one brand also has single .eml files, one a Gmail Takeout layout;
- a WordPress WXR export (Gutenberg blocks, shortcodes, a draft, a revision, an attachment item);
- a Shopify products CSV (one row per variant, body HTML on the first row only);
- a support chat export (CSV, JSON or JSONL by brand);
- the manual split across .md, .docx and .pdf, and saved web pages with navigation and footers
  (one brand's pages in a zip), plus the odd file a real folder has (an image, .DS_Store).

Needs the dev extra (python-docx, fpdf2).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import random
import re
import zipfile
from datetime import datetime, timedelta
from email import policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
AUTHORING = ROOT / "data" / "authoring"
SAMPLES = ROOT / "data" / "samples"
MBOX_POLICY = policy.default.clone(linesep="\n", max_line_length=78)

BRANDS = {
    "ember-coffee": {
        "name": "Ember Street Coffee Roasters", "domain": "emberstreet.example.com",
        "address": "Ember Street Coffee Roasters, 3 Kiln Yard, Larkfield LK1 4RB",
        "mail": "mbox", "chat": "csv", "pages": "html", "manual_name": "brewing-guide",
        "signature": "--\n{staff} | Ember Street Coffee Roasters\nCafé & roastery: 3 Kiln Yard, Larkfield\n"
                     "T: +1 555-0100 | hello@emberstreet.example.com",
    },
    "ledgerline": {
        "name": "Ledgerline Accounting", "domain": "ledgerline.example.com",
        "address": "Ledgerline Accounting Ltd, 14 Chapel Row, Ashby Vale AV1 3DN",
        "mail": "takeout", "chat": "json", "pages": "html", "manual_name": "client-onboarding-guide",
        "signature": "--\n{staff}\nLedgerline Accounting Ltd\n14 Chapel Row, Ashby Vale AV1 3DN\n"
                     "Tel: (555) 010-4400",
    },
    "spoke-sprocket": {
        "name": "Spoke & Sprocket Bike Repair", "domain": "spokeandsprocket.example.com",
        "address": "Spoke & Sprocket, Unit 2 Canal Wharf, Millbrook MB1 2CW",
        "mail": "eml", "chat": "jsonl", "pages": "zip", "manual_name": "bike-care-faq",
        "signature": "--\n{staff} @ Spoke & Sprocket\nUnit 2 Canal Wharf, Millbrook | 555 013 9000",
    },
}
DISCLAIMER = ("CONFIDENTIALITY NOTICE: This email and any attachments are confidential and intended solely for "
              "the addressee. If you have received it in error, please notify the sender and delete it. Any "
              "views expressed are those of the author and not necessarily of the company.")


def stable_id(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def newsletter_footer(brand: dict, slug: str) -> str:
    site = f"https://{brand['domain']}"
    return ("\n\n---\nView this email in your browser: " + site + "/newsletter/view\n"
            "You are receiving this email because you signed up at " + site + ".\n"
            "Unsubscribe: " + site + "/unsubscribe | Update your preferences: " + site + "/preferences\n"
            + brand["address"])


def mojibake(text: str) -> str:
    """UTF-8 bytes read as Windows-1252: the classic "cafÃ©" damage ftfy repairs."""
    return text.encode("utf-8").decode("cp1252", errors="replace")


BULLET = re.compile(r"^\s*([-*]|\d+\.)\s+")


def paragraphs_to_html(text: str) -> str:
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if lines and all(re.match(r"^\s*([-*]|\d+\.)\s+", line) for line in lines):
            tag = "ol" if re.match(r"^\s*\d+\.", lines[0]) else "ul"
            items = "".join(f"<li>{html.escape(BULLET.sub('', line))}</li>" for line in lines)
            out.append(f"<{tag}>{items}</{tag}>")
        elif block.startswith("## "):
            out.append(f"<h2>{html.escape(block[3:].strip())}</h2>")
        else:
            out.append("<p>" + "<br>\n".join(html.escape(line) for line in lines) + "</p>")
    return "\n".join(out)


def email_html(body: str, brand: dict, footer: str) -> str:
    footer_html = "<br>".join(html.escape(line) for line in footer.strip().splitlines() if line != "---")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{{font-family:Georgia,serif}}"
            f".wrap{{max-width:600px}}</style></head><body><table class=\"wrap\" role=\"presentation\"><tr><td>"
            f"<p style=\"font-size:11px\"><a href=\"https://{brand['domain']}/newsletter/view\">View in browser</a></p>"
            f"{paragraphs_to_html(body)}"
            f"<hr><p style=\"font-size:11px;color:#888\">{footer_html}</p></td></tr></table></body></html>")


# --------------------------------------------------------------------------- mail

def build_messages(slug: str, content: dict, brand: dict) -> list[EmailMessage]:
    rng = random.Random(slug)
    staff_names = [s.split()[0] for s in yaml.safe_load((SAMPLES / slug / "brand.yaml").read_text())["staff"]]
    sender = formataddr((brand["name"], f"hello@{brand['domain']}"))
    messages = []
    emails = content.get("emails") or []
    for index, mail in enumerate(emails):
        kind = mail.get("type", "newsletter")
        date = as_datetime(mail["date"])
        body = mail["body"].rstrip() + "\n"
        msg = EmailMessage(policy=MBOX_POLICY)
        from_name = mail.get("from_name") or brand["name"]
        msg["From"] = formataddr((from_name, f"hello@{brand['domain']}"))
        msg["Date"] = format_datetime(date)
        msg["Message-ID"] = f"<{stable_id(slug, mail['id'])}@{brand['domain']}>"
        if kind == "reply":
            to = formataddr((mail.get("to_name", ""), mail.get("to_addr", "customer@example.com")))
            msg["To"] = to
            msg["Subject"] = "Re: " + mail["subject"].removeprefix("Re: ")
            msg["In-Reply-To"] = f"<{stable_id(slug, mail['id'], 'q')}@mail.example.com>"
            staff = next((s for s in staff_names if s in from_name), staff_names[index % len(staff_names)])
            body += "\n" + brand["signature"].format(staff=staff) + "\n"
            if index % 2 == 0:
                body += "\n" + DISCLAIMER + "\n"
            if mail.get("quoted"):
                when = date - timedelta(hours=rng.randint(2, 30))
                quoted = "\n".join("> " + line if line else ">" for line in mail["quoted"].rstrip().splitlines())
                body += (f"\nOn {when.strftime('%a, %d %b %Y at %H:%M')}, {mail.get('to_name', 'A customer')} "
                         f"<{mail.get('to_addr', 'customer@example.com')}> wrote:\n{quoted}\n")
        else:
            msg["To"] = f"friends@lists.{brand['domain']}" if kind != "order_update" else formataddr(
                (mail.get("to_name", ""), mail.get("to_addr", "customer@example.com")))
            msg["Subject"] = mail["subject"]
            if kind in ("newsletter", "announcement"):
                msg["List-Unsubscribe"] = f"<https://{brand['domain']}/unsubscribe>"
                body += newsletter_footer(brand, slug) + "\n"
        if index % 9 == 4:
            body = mojibake(body)  # a message damaged by a mail tool on the way
        cte = "base64" if index % 3 == 1 else "quoted-printable"
        charset = "utf-8"
        if index % 7 == 3:
            try:
                body.encode("cp1252")
                charset = "windows-1252"
                msg.replace_header("Subject", Header(str(msg["Subject"]), "iso-8859-1").encode()) \
                    if all(ord(c) < 256 for c in str(msg["Subject"])) else None
            except UnicodeEncodeError:
                pass
        if charset == "utf-8":
            msg.set_content(body, subtype="plain", charset="utf-8", cte=cte)
        else:
            msg.set_content(body.encode(charset), maintype="text", subtype="plain", cte=cte)
            msg.set_param("charset", charset)
        if mail.get("html"):
            footer = newsletter_footer(brand, slug) if kind in ("newsletter", "announcement") else ""
            msg.add_alternative(email_html(mail["body"], brand, footer), subtype="html", cte="quoted-printable")
        messages.append(msg)
    # An attachment on one reply (an order confirmation PDF the customer asked for).
    replies = [m for m in messages if str(m["Subject"]).startswith("Re:")]
    if replies:
        replies[0].add_attachment(b"%PDF-1.4\n% order confirmation\n", maintype="application", subtype="pdf",
                                  filename="order-confirmation.pdf")
    # Exact duplicate (sent twice by mistake) and a near-duplicate ("Reminder") of newsletters.
    newsletters = [(m, e) for m, e in zip(messages, emails, strict=False) if e.get("type") == "newsletter"]
    for original, source in newsletters[:2]:
        copy = EmailMessage(policy=MBOX_POLICY)
        for key in ("From", "To", "Subject", "List-Unsubscribe"):
            copy[key] = original[key]
        copy["Message-ID"] = f"<{stable_id(slug, source['id'], 'dup')}@{brand['domain']}>"
        copy["Date"] = format_datetime(as_datetime(source["date"]) + timedelta(minutes=7))
        copy.set_content(source["body"].rstrip() + "\n" + newsletter_footer(brand, slug) + "\n",
                         charset="utf-8", cte="quoted-printable")
        messages.append(copy)
    for original, source in newsletters[2:4]:
        near = EmailMessage(policy=MBOX_POLICY)
        near["From"], near["To"] = original["From"], original["To"]
        near["Subject"] = "Reminder: " + source["subject"]
        near["Date"] = format_datetime(as_datetime(source["date"]) + timedelta(days=3))
        near["Message-ID"] = f"<{stable_id(slug, source['id'], 'near')}@{brand['domain']}>"
        lines = source["body"].rstrip().splitlines()
        lines.insert(min(2, len(lines)), "Just a quick reminder in case this one slipped past you.")
        near.set_content("\n".join(lines) + "\n" + newsletter_footer(brand, slug) + "\n", charset="utf-8",
                         cte="quoted-printable")
        messages.append(near)
    # A forwarded message (forward header and all) from the owner to the team.
    if emails:
        first = emails[0]
        fwd = EmailMessage(policy=MBOX_POLICY)
        fwd["From"], fwd["To"] = sender, f"team@{brand['domain']}"
        fwd["Subject"] = "Fwd: " + first["subject"]
        fwd["Date"] = format_datetime(as_datetime(first["date"]) + timedelta(days=1))
        fwd["Message-ID"] = f"<{stable_id(slug, 'fwd')}@{brand['domain']}>"
        fwd.set_content("FYI, this one went out yesterday.\n\n---------- Forwarded message ---------\n"
                        f"From: {sender}\nDate: {first['date']}\nSubject: {first['subject']}\n"
                        f"To: friends@lists.{brand['domain']}\n\n{first['body'].rstrip()}\n", charset="utf-8")
        messages.append(fwd)
    foreign = content.get("foreign")
    if foreign:
        msg = EmailMessage(policy=MBOX_POLICY)
        msg["From"], msg["To"] = sender, f"amigos@lists.{brand['domain']}"
        msg["Subject"] = foreign["subject"]
        msg["Date"] = format_datetime(datetime(2025, 6, 2, 9, 0))
        msg["Message-ID"] = f"<{stable_id(slug, 'foreign')}@{brand['domain']}>"
        msg.set_content(foreign["body"], charset="utf-8", cte="quoted-printable")
        messages.append(msg)
    for number, short in enumerate(content.get("short") or []):
        msg = EmailMessage(policy=MBOX_POLICY)
        msg["From"], msg["To"] = sender, "customer@example.com"
        msg["Subject"] = short["subject"]
        msg["Date"] = format_datetime(datetime(2025, 2, 10 + number, 12, 0))
        msg["Message-ID"] = f"<{stable_id(slug, 'short', str(number))}@{brand['domain']}>"
        msg.set_content(short["body"] + "\n", charset="utf-8")
        messages.append(msg)
    messages.sort(key=lambda m: as_datetime(datetime.strptime(str(m["Date"]), "%a, %d %b %Y %H:%M:%S %z")
                                            .replace(tzinfo=None)))
    return messages


def fix_boundaries(msg: EmailMessage) -> EmailMessage:
    """MIME boundaries are random by default; derive them from the message so rebuilds are identical."""
    for number, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"==brandkit-{stable_id(str(msg['Message-ID']), str(number))}==")
    return msg


def mbox_bytes(messages: list[EmailMessage], labels: str | None = None) -> bytes:
    out = io.BytesIO()
    for msg in messages:
        if labels:
            msg["X-Gmail-Labels"] = labels
        date = datetime.strptime(str(msg["Date"]), "%a, %d %b %Y %H:%M:%S %z")
        out.write(f"From hello@example.com {date.strftime('%a %b %d %H:%M:%S %Y')}\n".encode())
        BytesGenerator(out, mangle_from_=True, policy=MBOX_POLICY).flatten(fix_boundaries(msg))
        out.write(b"\n")
    return out.getvalue()


def write_mail(slug: str, content: dict, brand: dict, exports: Path) -> None:
    messages = build_messages(slug, content, brand)
    if brand["mail"] == "mbox":
        (exports / "mail").mkdir(parents=True)
        (exports / "mail" / "Sent.mbox").write_bytes(mbox_bytes(messages))
    elif brand["mail"] == "takeout":
        folder = exports / "Takeout" / "Mail"
        folder.mkdir(parents=True)
        (folder / "All mail Including Spam and Trash.mbox").write_bytes(mbox_bytes(messages, "Sent,Important"))
    else:  # newsletters in an mbox, replies saved one by one as .eml
        folder = exports / "mail"
        folder.mkdir(parents=True)
        replies = [m for m in messages if str(m["Subject"]).startswith("Re:")]
        others = [m for m in messages if not str(m["Subject"]).startswith("Re:")]
        (folder / "newsletters.mbox").write_bytes(mbox_bytes(others))
        for number, msg in enumerate(replies, 1):
            out = io.BytesIO()
            BytesGenerator(out, policy=MBOX_POLICY).flatten(fix_boundaries(msg))
            (folder / f"reply-{number:02d}.eml").write_bytes(out.getvalue())


# --------------------------------------------------------------------------- WordPress

def gutenberg(body: str, rng: random.Random) -> str:
    blocks = []
    for block in re.split(r"\n\s*\n", body.strip()):
        if block.startswith("## "):
            blocks.append(f"<!-- wp:heading -->\n<h2 class=\"wp-block-heading\">{html.escape(block[3:].strip())}</h2>\n"
                          "<!-- /wp:heading -->")
        elif all(re.match(r"^\s*[-*]\s+", line) for line in block.splitlines()):
            items = "".join(f"<li>{html.escape(line.strip()[2:])}</li>" for line in block.splitlines())
            blocks.append(f"<!-- wp:list -->\n<ul class=\"wp-block-list\">{items}</ul>\n<!-- /wp:list -->")
        else:
            blocks.append(f"<!-- wp:paragraph -->\n<p>{html.escape(block.strip())}</p>\n<!-- /wp:paragraph -->")
    if rng.random() < 0.5 and len(blocks) > 1:
        blocks.insert(1, '[caption id="attachment_901" align="aligncenter" width="640"]'
                         '<img src="https://example.com/wp-content/uploads/photo.jpg" alt="" width="640" height="427" />'
                         " Fresh from the workshop[/caption]")
    if rng.random() < 0.3:
        blocks.append('<!-- wp:shortcode -->\n[gallery ids="901,902,903" columns="3"]\n<!-- /wp:shortcode -->')
    if rng.random() < 0.2:
        blocks.append('[contact-form-7 id="45" title="Newsletter signup"]')
    return "\n\n".join(blocks)


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def write_wordpress(slug: str, content: dict, brand: dict, exports: Path) -> None:
    rng = random.Random(slug + "wp")
    items = []
    post_id = 100
    for post in content.get("blog_posts") or []:
        post_id += 1
        date = as_datetime(post["date"])
        nice = re.sub(r"[^a-z0-9]+", "-", post["title"].lower()).strip("-")
        cats = "".join(f'<category domain="category" nicename="{re.sub(r"[^a-z0-9]+", "-", c.lower())}">'
                       f"{cdata(c)}</category>" for c in post.get("categories") or [])
        tags = "".join(f'<category domain="post_tag" nicename="{re.sub(r"[^a-z0-9]+", "-", t.lower())}">'
                       f"{cdata(t)}</category>" for t in post.get("tags") or [])
        items.append(wxr_item(post_id, post["title"], nice, date, post.get("status", "publish"), "post",
                              gutenberg(post["body"], rng), cats + tags, brand))
        if post_id == 103:  # a revision of a post: WXR exports carry them, an import must skip them
            items.append(wxr_item(post_id + 500, post["title"], f"{post_id}-revision-v1", date, "inherit",
                                  "revision", gutenberg(post["body"][:300], rng), "", brand, parent=post_id))
    items.append(wxr_item(901, "photo", "photo", datetime(2024, 5, 1, 8, 0), "inherit", "attachment", "", "",
                          brand, attachment_url="https://example.com/wp-content/uploads/photo.jpg"))
    xml = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!-- This is a WordPress eXtended RSS file generated by '
           'WordPress as an export of your site. -->\n<rss version="2.0" '
           'xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/" '
           'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n'
           f"<title>{html.escape(brand['name'])}</title>\n<link>https://{brand['domain']}</link>\n"
           "<language>en-GB</language>\n<wp:wxr_version>1.2</wp:wxr_version>\n"
           f"<wp:base_site_url>https://{brand['domain']}</wp:base_site_url>\n"
           "<wp:author><wp:author_id>1</wp:author_id><wp:author_login><![CDATA[owner]]></wp:author_login>"
           "<wp:author_display_name><![CDATA[The team]]></wp:author_display_name></wp:author>\n"
           + "\n".join(items) + "\n</channel>\n</rss>\n")
    folder = exports / "wordpress"
    folder.mkdir(parents=True)
    (folder / f"{slug}.WordPress.2025-10-30.xml").write_text(xml, encoding="utf-8")


def wxr_item(post_id: int, title: str, name: str, date: datetime, status: str, post_type: str, body: str,
             categories: str, brand: dict, parent: int = 0, attachment_url: str = "") -> str:
    link = f"https://{brand['domain']}/{date:%Y/%m}/{name}/"
    extra = f"<wp:attachment_url>{cdata(attachment_url)}</wp:attachment_url>" if attachment_url else ""
    return (f"<item>\n<title>{cdata(title)}</title>\n<link>{link}</link>\n"
            f"<pubDate>{format_datetime(date)}</pubDate>\n<dc:creator>{cdata('owner')}</dc:creator>\n"
            f"<guid isPermaLink=\"false\">https://{brand['domain']}/?p={post_id}</guid>\n<description></description>\n"
            f"<content:encoded>{cdata(body)}</content:encoded>\n<excerpt:encoded>{cdata('')}</excerpt:encoded>\n"
            f"<wp:post_id>{post_id}</wp:post_id>\n<wp:post_date>{cdata(date.strftime('%Y-%m-%d %H:%M:%S'))}"
            f"</wp:post_date>\n<wp:post_name>{cdata(name)}</wp:post_name>\n<wp:status>{cdata(status)}</wp:status>\n"
            f"<wp:post_parent>{parent}</wp:post_parent>\n<wp:post_type>{cdata(post_type)}</wp:post_type>\n"
            f"{extra}{categories}\n</item>")


# --------------------------------------------------------------------------- Shopify

SHOPIFY_COLUMNS = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags", "Published",
    "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value", "Option3 Name", "Option3 Value",
    "Variant SKU", "Variant Grams", "Variant Inventory Tracker", "Variant Inventory Qty",
    "Variant Inventory Policy", "Variant Fulfillment Service", "Variant Price", "Variant Compare At Price",
    "Variant Requires Shipping", "Variant Taxable", "Variant Barcode", "Image Src", "Image Position",
    "Image Alt Text", "Gift Card", "SEO Title", "SEO Description", "Variant Image", "Variant Weight Unit",
    "Variant Tax Code", "Cost per item", "Status"]


def write_shopify(slug: str, content: dict, brand: dict, exports: Path) -> None:
    folder = exports / "shopify"
    folder.mkdir(parents=True)
    with open(folder / "products_export_1.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SHOPIFY_COLUMNS)
        writer.writeheader()
        for product in content.get("products") or []:
            options = [v["option"] for v in product.get("variants") or [{"option": "Default Title", "price": 0}]]
            parts = [o.split(" / ") for o in options]
            names = ["Size", "Grind", "Style"] if any(len(p) > 1 for p in parts) else ["Option"]
            for number, (variant, part) in enumerate(zip(product.get("variants") or [], parts, strict=False)):
                row = {c: "" for c in SHOPIFY_COLUMNS}
                row.update({"Handle": product["handle"], "Variant SKU": variant.get("sku", ""),
                            "Variant Price": f"{float(variant.get('price', 0)):.2f}", "Variant Grams": "250",
                            "Variant Inventory Tracker": "shopify", "Variant Inventory Qty": "12",
                            "Variant Inventory Policy": "deny", "Variant Fulfillment Service": "manual",
                            "Variant Requires Shipping": "TRUE", "Variant Taxable": "TRUE",
                            "Variant Weight Unit": "g", "Status": "active"})
                for i, value in enumerate(part[:3]):
                    row[f"Option{i + 1} Name"] = names[i] if number == 0 and i < len(names) else ""
                    row[f"Option{i + 1} Value"] = value
                if number == 0:
                    row.update({"Title": product["title"], "Body (HTML)": paragraphs_to_html(product["description"]),
                                "Vendor": product.get("vendor", brand["name"]), "Type": product.get("type", ""),
                                "Tags": ", ".join(product.get("tags") or []), "Published": "TRUE",
                                "Gift Card": "FALSE", "Image Position": "1",
                                "Image Src": f"https://cdn.example.com/s/files/{product['handle']}.jpg",
                                "Product Category": "Food, Beverages & Tobacco" if slug == "ember-coffee" else ""})
                writer.writerow(row)


# --------------------------------------------------------------------------- support chats

def write_chats(slug: str, content: dict, brand: dict, exports: Path) -> None:
    folder = exports / "support"
    folder.mkdir(parents=True)
    rows = []
    for chat in content.get("chats") or []:
        start = as_datetime(chat["started"])
        for number, turn in enumerate(chat["turns"]):
            customer = turn["role"] == "customer"
            rows.append({"conversation_id": chat["id"], "timestamp": (start + timedelta(minutes=2 * number)).isoformat(),
                         "author_role": "customer" if customer else "agent",
                         "author_name": chat["customer_name"] if customer else chat["agent_name"],
                         "message": turn["text"].strip()})
    style = brand["chat"]
    if style == "csv":
        shuffled = sorted(rows, key=lambda r: (r["timestamp"][:10], stable_id(r["conversation_id"], r["timestamp"])))
        with open(folder / "chat_export.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(shuffled)  # rows arrive out of order, as exports do; collect re-orders by time
    elif style == "json":
        conversations = {}
        for row in rows:
            conv = conversations.setdefault(row["conversation_id"], {"id": row["conversation_id"],
                                                                     "created_at": row["timestamp"], "messages": []})
            conv["messages"].append({"sender": row["author_name"], "sender_type": row["author_role"],
                                     "sent_at": row["timestamp"], "body": row["message"]})
        (folder / "conversations.json").write_text(json.dumps(list(conversations.values()), indent=2,
                                                              ensure_ascii=False), encoding="utf-8")
    else:
        with open(folder / "helpdesk_messages.jsonl", "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({"ticket": row["conversation_id"], "created": row["timestamp"],
                                         "role": "user" if row["author_role"] == "customer" else "staff",
                                         "name": row["author_name"], "text": row["message"]},
                                        ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- manual and pages

def write_manual(slug: str, content: dict, brand: dict, exports: Path) -> None:
    manual = content.get("manual") or {}
    sections = manual.get("sections") or []
    if not sections:
        return
    folder = exports / "docs"
    folder.mkdir(parents=True)
    third = max(1, len(sections) // 3)
    md_part, docx_part, pdf_part = sections[:third], sections[third:2 * third], sections[2 * third:]
    title = manual.get("title", "Guide")
    md = f"# {title}\n\n" + "\n\n".join(f"## {s['heading']}\n\n{s['body'].strip()}" for s in md_part) + "\n"
    (folder / f"{brand['manual_name']}.md").write_text(md, encoding="utf-8")

    from docx import Document

    document = Document()
    document.core_properties.title = title
    document.core_properties.author = brand["name"]
    document.core_properties.created = datetime(2024, 1, 1)
    document.core_properties.modified = datetime(2024, 1, 1)
    document.add_heading(title + " (part 2)", level=1)
    for section in docx_part:
        document.add_heading(section["heading"], level=2)
        for block in re.split(r"\n\s*\n", section["body"].strip()):
            lines = block.splitlines()
            if all(re.match(r"^\s*([-*]|\d+\.)\s+", line) for line in lines):
                for line in lines:
                    document.add_paragraph(re.sub(r"^\s*([-*]|\d+\.)\s+", "", line), style="List Bullet")
            else:
                document.add_paragraph(" ".join(line.strip() for line in lines))
    buffer = io.BytesIO()
    document.save(buffer)
    (folder / f"{brand['manual_name']}-part2.docx").write_bytes(normalise_zip(buffer.getvalue()))

    # The PDF repeats the last Markdown section too: the same text saved in two places.
    write_pdf(folder / f"{brand['manual_name']}-faq.pdf", title + " (FAQ)", md_part[-1:] + pdf_part, brand)


def pdf_safe(text: str) -> str:
    """The core PDF fonts are Latin-1: keep what they can draw, drop the rest (emoji)."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2014", "-").replace("\u2013", "-").replace("\u2026", "...")
    return text.encode("latin-1", errors="ignore").decode("latin-1")


def write_pdf(path: Path, title: str, sections: list[dict], brand: dict) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 1, 1))
    pdf.set_title(pdf_safe(title))
    pdf.set_author(pdf_safe(brand["name"]))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 10, pdf_safe(title), new_x="LMARGIN", new_y="NEXT")
    for section in sections:
        pdf.start_section(pdf_safe(section["heading"]))
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(0, 8, pdf_safe(section["heading"]), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        for block in re.split(r"\n\s*\n", section["body"].strip()):
            pdf.multi_cell(0, 6, pdf_safe(" ".join(line.strip() for line in block.splitlines())),
                           new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))


def page_html(page: dict, brand: dict, pages: list[dict]) -> str:
    nav = "".join(f'<li><a href="/{p["slug"]}/">{html.escape(p["title"])}</a></li>' for p in pages)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(page['title'])} | {html.escape(brand['name'])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/site.css"><script src="/assets/analytics.js" async></script></head>
<body>
<div class="cookie-banner">We use cookies to improve your experience. <a href="/privacy/">Privacy policy</a>
<button>Accept all</button></div>
<header class="site-header"><a class="logo" href="/">{html.escape(brand['name'])}</a>
<nav class="main-nav"><ul><li><a href="/">Home</a></li><li><a href="/shop/">Shop</a></li>{nav}
<li><a href="/blog/">Blog</a></li><li><a href="/cart/">Cart (0)</a></li></ul></nav></header>
<main id="content"><article class="page">
<h1>{html.escape(page['title'])}</h1>
{paragraphs_to_html(page['body'])}
</article></main>
<aside class="signup"><h3>Join our newsletter</h3><form><input type="email" placeholder="Your email">
<button>Sign up</button></form></aside>
<footer class="site-footer"><p>{html.escape(brand['address'])}</p>
<p><a href="/terms/">Terms</a> | <a href="/privacy/">Privacy</a> | <a href="/contact/">Contact</a></p>
<p>Follow us: <a href="https://social.example.com/x">Instagram</a> · <a href="https://social.example.com/y">Facebook</a></p>
<p>&copy; 2025 {html.escape(brand['name'])}. All rights reserved.</p></footer>
</body></html>
"""


def write_pages(slug: str, content: dict, brand: dict, exports: Path) -> None:
    pages = content.get("pages") or []
    files = {f"{p['slug']}.html": page_html(p, brand, pages).encode("utf-8") for p in pages}
    if brand["pages"] == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in sorted(files.items()):
                info = zipfile.ZipInfo(f"website/{name}", date_time=(2025, 10, 1, 12, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
            archive.writestr(zipfile.ZipInfo("website/logo.png", date_time=(2025, 10, 1, 12, 0, 0)),
                             b"\x89PNG\r\n\x1a\n" + bytes(32))
        (exports / "website-backup.zip").write_bytes(buffer.getvalue())
        return
    folder = exports / "website"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))  # an image: not text, skipped


def normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip (a .docx) with fixed timestamps so rebuilding gives identical bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read(item.filename))
    return out.getvalue()


# --------------------------------------------------------------------------- generic pool

GENERIC_KINDS = {"notice": "other"}


def write_generic_pool() -> int:
    documents = []
    for path in sorted(AUTHORING.glob("generic_*.yaml")):
        for number, doc in enumerate(yaml.safe_load(path.read_text(encoding="utf-8"))["documents"], 1):
            kind = GENERIC_KINDS.get(doc["kind"], doc["kind"])
            documents.append({"id": f"{path.stem}-{number:03d}", "kind": kind, "title": doc["title"].strip(),
                              "text": doc["text"].strip()})
    folder = SAMPLES / "generic"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "generic.jsonl", "w", encoding="utf-8") as handle:
        for doc in documents:
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return len(documents)


def build_brand(slug: str) -> None:
    content = yaml.safe_load((AUTHORING / f"{slug}.yaml").read_text(encoding="utf-8"))
    brand = BRANDS[slug]
    exports = SAMPLES / slug / "exports"
    if exports.exists():
        import shutil

        shutil.rmtree(exports)
    exports.mkdir(parents=True)
    write_mail(slug, content, brand, exports)
    write_wordpress(slug, content, brand, exports)
    write_shopify(slug, content, brand, exports)
    write_chats(slug, content, brand, exports)
    write_manual(slug, content, brand, exports)
    write_pages(slug, content, brand, exports)
    (exports / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(16))


def main() -> None:
    print(f"generic pool: {write_generic_pool()} documents")
    for slug in BRANDS:
        if (AUTHORING / f"{slug}.yaml").exists() and (SAMPLES / slug / "brand.yaml").exists():
            build_brand(slug)
            files = sorted(p.relative_to(SAMPLES / slug).as_posix() for p in (SAMPLES / slug / "exports").rglob("*")
                           if p.is_file())
            print(f"{slug}: {len(files)} files: {', '.join(files)}")
        else:
            print(f"{slug}: not authored yet, skipped")


if __name__ == "__main__":
    main()
