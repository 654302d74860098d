"""The per-document cleaning steps (unicode, HTML, email, boilerplate, personal data, quality, language).

Each step takes a row and the config and returns a Change (new text, or a reason to drop) or None.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from typing import Any

from ..collect import html_to_text as whole_html_to_text
from ..config import CleanConfig
from .audit import Change, map_texts

# --------------------------------------------------------------------------- 1. unicode

def normalise_whitespace(text: str) -> str:
    """Unix newlines, no trailing spaces, single spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").replace("\u200b", "")
    text = "\n".join(re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def step_fix_unicode(row: dict[str, Any], config: CleanConfig) -> Change | None:
    import ftfy

    repaired = []

    def fix(text: str) -> str:
        # plain ASCII has no mojibake to repair: only the whitespace needs normalising
        fixed = normalise_whitespace(text if text.isascii() else
                                     ftfy.fix_text(text, uncurl_quotes=False, normalization="NFC"))
        if fixed != normalise_whitespace(text):
            repaired.append(True)
        return fixed

    text, turns = map_texts(row, fix)
    reason = "repaired mojibake / broken Unicode (ftfy)" if repaired else "normalised whitespace"
    return Change(reason, text=text, turns=turns or None)


# --------------------------------------------------------------------------- 2. HTML

SHORTCODE_PAIR = re.compile(r"\[(caption|embed|video|audio)[^\]]*\].*?\[/\1\]", re.S)
SHORTCODE = re.compile(r"\[/?[a-z][\w\-]*(?:\s[^\]]*)?\]")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def main_content(html: str) -> str:
    """The main text of a page or post (trafilatura), falling back to the whole body."""
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True) or ""
    # trafilatura puts one paragraph per line; a blank line between them keeps the shape of the post
    return re.sub(r"\n+", "\n\n", text) if text.strip() else whole_html_to_text(html)


def step_html_to_text(row: dict[str, Any], config: CleanConfig) -> Change | None:
    if row["format"] != "html":
        return None
    html = HTML_COMMENT.sub("", row["text"])                     # Gutenberg block markers
    html = SHORTCODE.sub("", SHORTCODE_PAIR.sub("", html))         # [caption]...[/caption], [gallery ...]
    if row["kind"] in ("page", "blog"):
        text, how = main_content(f"<html><body><article>{html}</article></body></html>"), "main content"
    else:
        text, how = whole_html_to_text(html), "whole body"
    return Change(f"HTML converted to text ({how})", text=normalise_whitespace(text), format="text")


# --------------------------------------------------------------------------- 3. email

SIGNATURE_DELIMITER = re.compile(r"^--\s*$", re.M)
FORWARD_MARKER = re.compile(r"^-{3,}\s*(?:Forwarded message|Original Message|Begin forwarded message)\b.*$",
                            re.M | re.I)
DISCLAIMER = re.compile(r"^(?:CONFIDENTIAL(?:ITY)? NOTICE|DISCLAIMER|This (?:e-?mail|message) (?:and any "
                        r"attachments )?(?:is|are) (?:confidential|intended)).*?(?:\n\n|\Z)", re.M | re.I | re.S)
MOBILE_FOOTER = re.compile(r"^Sent from my \w+.*$", re.M)
THREAD_HINT = re.compile(r"wrote:|schrieb|a écrit|escribió|ha scritto|schreef|^\s*>|^(?:From|Von|De|Van|Da):|^-{2,}|"
                         r"forwarded|original message|confidential|disclaimer|sent from my|intended (?:solely )?for",
                         re.I | re.M)


def step_strip_email(row: dict[str, Any], config: CleanConfig, languages: tuple[str, ...] = ("en",)) -> Change | None:
    """Keep the newest message of a thread; drop quotes, forwards, signatures and disclaimers.

    mail-parser-reply splits the thread at reply headers ("On ... wrote:", Outlook blocks). Its
    signature rules would also cut a brand's sign-off ("Kind regards, ..."), which is part of the
    voice, so signatures are cut only at the standard "-- " delimiter.
    """
    if row["kind"] != "email" or not THREAD_HINT.search(row["text"]):
        return None  # nothing that looks like a reply, forward, signature or disclaimer
    from mailparser_reply.parser import EmailMessage

    text = row["text"]
    message = EmailMessage(text=text, languages=list(languages), keep_hyphen_lists=True).read()
    newest = message.replies[0].content if message.replies else text
    removed = []
    if len(message.replies) > 1:
        removed.append("forwarded message" if FORWARD_MARKER.search(newest) else "quoted reply")
    newest = FORWARD_MARKER.split(newest)[0] if FORWARD_MARKER.search(newest) else newest
    newest = re.sub(r"(?m)^>.*\n?", "", newest) if newest.count("\n>") > 2 else newest  # inline quoting
    signature = SIGNATURE_DELIMITER.search(newest)
    if signature:
        newest, tail = newest[:signature.start()], newest[signature.start():]
        removed += ["signature"] + (["legal disclaimer"] if DISCLAIMER.search(tail) else [])
    if DISCLAIMER.search(newest):
        newest, removed = DISCLAIMER.sub("", newest), removed + ["legal disclaimer"]
    if MOBILE_FOOTER.search(newest):
        newest, removed = MOBILE_FOOTER.sub("", newest), removed + ["'Sent from' line"]
    newest = normalise_whitespace(newest)
    if not removed or newest == text:
        return None
    return Change(f"removed {', '.join(removed)}", text=newest)


# --------------------------------------------------------------------------- 4. boilerplate

MARKETING_LINE = re.compile(
    r"unsubscribe|view (?:this )?(?:e-?mail )?in (?:your |a |the )?browser|update (?:your )?preferences|"
    r"manage (?:your )?(?:subscription|preferences)|you(?:'re| are) receiving this|"
    r"(?:sent|delivered) to you because|add us to your address book|all rights reserved|^-{3,}$", re.I)


def line_key(line: str) -> str:
    return " ".join(line.lower().split())


def line_keys(text: str) -> list[str]:
    """A document's distinct lines long enough to be boilerplate, normalised for counting."""
    return list({key for key in map(line_key, text.splitlines()) if len(key) >= 12})


def learn_boilerplate(lines: list[list[str]], alive: int, config: CleanConfig, keep: list[str]) -> set[str]:
    """Lines that repeat across many documents (footers, legal lines), minus the brand's sign-off."""
    counts: Counter = Counter(key for keys in lines for key in keys)
    floor = max(config.boilerplate_min_docs, int(config.boilerplate_min_share * alive))
    protected = [line_key(k) for k in keep if k]
    return {line for line, n in counts.items() if n >= floor
            and not any(line in p or p in line for p in protected if len(p) >= 4)}


def step_strip_boilerplate(row: dict[str, Any], config: CleanConfig, learned: frozenset = frozenset(),
                           keep: tuple[str, ...] = ()) -> Change | None:
    """Marketing lines anywhere; learned repeated lines only at the document's top and bottom edges.

    Footers and headers sit at the edges. A repeated line in the middle of a text is content, and
    a document that is mostly repeated lines is left to the duplicate steps.
    """
    marketing = repeated = 0
    protected = [line_key(k) for k in keep if k]

    def strip(text: str) -> str:
        nonlocal marketing, repeated
        lines = text.splitlines()
        flags = []
        for line in lines:
            key = line_key(line)
            is_protected = any(key in p or p in key for p in protected if len(p) >= 4) if key else False
            flags.append("marketing" if key and not is_protected and MARKETING_LINE.search(line)
                         else "learned" if key in learned and not is_protected else "")
        edge = set()
        for order in (range(len(lines)), range(len(lines) - 1, -1, -1)):
            for i in order:
                if flags[i] or not lines[i].strip():
                    edge.add(i)
                else:
                    break
        learned_words = sum(word_count(lines[i]) for i in edge if flags[i] == "learned")
        if learned_words * 2 > word_count(text):
            edge = {i for i in edge if flags[i] != "learned"}
        drop = {i for i, flag in enumerate(flags) if flag == "marketing"} | {i for i in edge if flags[i] == "learned"}
        marketing += sum(1 for i in drop if flags[i] == "marketing")
        repeated += sum(1 for i in drop if flags[i] == "learned")
        return normalise_whitespace("\n".join(line for i, line in enumerate(lines) if i not in drop))

    text, turns = map_texts(row, strip)
    if not (marketing or repeated):
        return None
    parts = ([f"{marketing} marketing footer line(s) (unsubscribe, view in browser, ...)"] if marketing else []) + (
        [f"{repeated} line(s) repeated across many documents"] if repeated else [])
    return Change("removed " + " and ".join(parts), text=text, turns=turns or None)


# --------------------------------------------------------------------------- 5. personal data

@functools.lru_cache(maxsize=4)
def _redactor(entities: tuple[str, ...], regions: tuple[str, ...], keep: tuple[str, ...],
              vocabulary: tuple[str, ...] = ()):
    from .redact import (
        Redactor,  # presidio (and through it spaCy) loads only when redaction runs
    )

    return Redactor(entities, regions, keep, vocabulary=vocabulary)


def known_people(row: dict[str, Any]) -> list[str]:
    """Names the export itself tells us: the chat's customer, the email's recipient."""
    extra = json.loads(row.get("extra") or "{}")
    names = [str(extra.get("customer", "") or "")]
    names += [t.get("author", "") for t in row["turns"] or [] if t.get("role") == "customer"]
    for recipient in re.split(r",\s*(?=[^,]*<)", str(extra.get("to", ""))):
        match = re.match(r'\s*"?([^"<@]+?)"?\s*<', recipient)
        if match:
            names.append(match.group(1))
    return [n for n in names if n]


def step_redact_pii(row: dict[str, Any], config: CleanConfig, keep: tuple[str, ...] = (),
                    vocabulary: tuple[str, ...] = ()) -> Change | None:
    from .redact import replace

    redactor = _redactor(tuple(config.pii_entities), tuple(config.phone_regions), keep, vocabulary)
    turns = row["turns"] or []
    texts = [t["text"] for t in turns] if turns else [row["text"]]
    found = redactor.find_all(texts, known_people(row), ner=row["kind"] in config.ner_kinds)
    total: Counter = Counter(f.entity for findings in found for f in findings)
    if not total:
        return None
    redacted = [replace(text, findings) if findings else text for text, findings in zip(texts, found)]
    chars = sum(f.end - f.start for findings in found for f in findings)
    new_turns = [{**t, "text": text, "author": "[PERSON]" if t.get("role") == "customer" else t.get("author", "")}
                 for t, text in zip(turns, redacted)] if turns else None
    summary = ", ".join(f"{n} {entity}" for entity, n in total.most_common())
    return Change(f"redacted personal data: {summary}", text=None if turns else redacted[0], turns=new_turns,
                  details={"entities": dict(total), "redacted_chars": chars})


# A metadata key naming a person or their contact details is dropped whole; other values are redacted.
PERSONAL_KEY = re.compile(r"^(?:to|cc|bcc|from|reply_to|sender|recipient|customer|client|message_id|in_reply_to|"
                          r"references|ip|user)$|(?:^|_)(?:email|e_mail|name|phone|mobile|tel|address|customer|"
                          r"username|contact)(?:_|$)")


def step_redact_metadata(row: dict[str, Any], config: CleanConfig, keep: tuple[str, ...] = (),
                         vocabulary: tuple[str, ...] = ()) -> Change | None:
    """Every other column that reaches the cleaned output: title, author, tags, source and the extra fields.

    Keys that name a person or an address (to, customer, message_id, ...) are dropped; every other
    string is redacted like the text, with the names the export gives for this document.
    """
    from .redact import replace

    redactor = _redactor(tuple(config.pii_entities), tuple(config.phone_regions), keep, vocabulary)
    extra = json.loads(row.get("extra") or "{}")
    dropped = sorted(k for k in extra if PERSONAL_KEY.search(re.sub(r"[\s\-]+", "_", str(k).lower())))
    kept = {k: v for k, v in extra.items() if k not in dropped}
    strings = [(("title",), row["title"] or ""), (("author",), row["author"] or ""), (("source",), row["source"])]
    strings += [(("tags", i), tag) for i, tag in enumerate(row["tags"] or [])]
    strings += [(("extra", k), v) for k, v in kept.items() if isinstance(v, str)]
    strings += [(("extra", k, i), item) for k, v in kept.items() if isinstance(v, list)
                for i, item in enumerate(v) if isinstance(item, str)]
    found = redactor.find_all([text for _, text in strings], known_people(row),
                              ner=row["kind"] in config.ner_kinds)
    if not dropped and not any(found):
        return None
    fields: dict[str, Any] = {"tags": list(row["tags"] or [])}
    changed = [f"extra.{k}" for k in dropped]
    for ((column, *where), text), findings in zip(strings, found):
        if not findings:
            continue
        new = replace(text, findings)
        changed.append(".".join([column, *map(str, where[:1])]))
        if column in ("title", "author", "source"):
            fields[column] = new
        elif column == "tags":
            fields["tags"][where[0]] = new
        elif len(where) == 1:
            kept[where[0]] = new
        else:
            kept[where[0]] = [*kept[where[0]][:where[1]], new, *kept[where[0]][where[1] + 1:]]
    fields["extra"] = json.dumps(kept, ensure_ascii=False, sort_keys=True, default=str)
    what = ", ".join(dict.fromkeys(changed))
    return Change(f"personal data in the metadata redacted or dropped: {what}", fields=fields,
                  details={"fields": list(dict.fromkeys(changed))})


# --------------------------------------------------------------------------- 6. quality

LETTERS = re.compile(r"[^\W\d_]+")
SPACES = re.compile(r"\s+")


def step_quality(row: dict[str, Any], config: CleanConfig) -> Change | None:
    """Length and quality rules tuned for business text: a 12-word reply is fine, a 'Thanks!' is not."""
    from .redact import placeholder_share

    body = row["text"] if not row["turns"] else "\n".join(t["text"] for t in row["turns"])
    words = word_count(body)
    minimum = config.min_words_by_kind.get(row["kind"], config.min_words)
    if words < minimum:
        return Change(f"too short to teach anything ({words} words, minimum {minimum} for a {row['kind']})",
                      drop=True)
    if words > config.max_words:
        return Change(f"too long ({words} words, maximum {config.max_words})", drop=True)
    visible = len(body) - sum(len(run) for run in SPACES.findall(body))
    alpha = sum(len(run) for run in LETTERS.findall(body)) / visible if visible else 0.0
    if alpha < config.min_alpha_share:
        return Change(f"mostly not words ({alpha:.0%} letters, minimum {config.min_alpha_share:.0%})", drop=True)
    share = placeholder_share(body) if "[" in body else 0.0
    if share > config.max_placeholder_share:
        return Change(f"mostly personal data ({share:.0%} of words redacted)", drop=True)
    if row["kind"] == "chat" and not any(t.get("role") == "staff" for t in row["turns"]):
        return Change("chat without a staff answer", drop=True)
    return None


# --------------------------------------------------------------------------- 7. language

LANGUAGES = ("EN", "ES", "FR", "DE", "IT", "PT", "NL", "PL", "SV", "DA")


@functools.lru_cache(maxsize=2)
def _language_detector(brand_language: str):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    codes = set(LANGUAGES) | {brand_language.upper()}
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code)) for code in codes
                 if hasattr(IsoCode639_1, code)]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


@functools.lru_cache(maxsize=2)
def _careful_detector(brand_language: str):
    """lingua's high-accuracy mode (all its n-gram sizes): slower and larger, for the short texts only."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    codes = set(LANGUAGES) | {brand_language.upper()}
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code)) for code in codes
                 if hasattr(IsoCode639_1, code)]
    return LanguageDetectorBuilder.from_languages(*languages).build()


SHORT_TEXT_WORDS = 30  # below this, the fast trigram-only verdict is a coin toss (a price list "is" Danish)

ENGLISH_WORDS = frozenset("the and to of a in is you that it for we our on with your this be are at".split())


def plainly_english(text: str) -> bool:
    """A cheap first look: a third of the words among the commonest English ones settles it."""
    tokens = re.findall(r"[a-z']+", text.lower())
    return len(tokens) >= 20 and sum(t in ENGLISH_WORDS for t in tokens) / len(tokens) > 0.3


def language_verdicts(texts: list[str], language: str) -> list[tuple[str, float]]:
    """For each text, ("", 0) if it is in `language` (or too short to tell), else (the language it is in,
    lingua's confidence in that verdict).

    A short text the fast (trigram) detector calls foreign gets a second look from lingua's
    high-accuracy mode: a price list or two chat lines share most of their trigrams with Danish or
    Swedish. The confidence returned lets the step keep an unsure verdict.
    """
    detector = _language_detector(language)
    samples = [re.sub(r"\[[A-Z_]+\]|https?://\S+", " ", t)[:1500] for t in texts]
    # One at a time: lingua's parallel API starts a thread pool, and a pool inherited by a forked
    # datasets worker deadlocks. num_proc gives the parallelism instead.
    out = []
    for sample in samples:
        words = word_count(sample)
        if words < 6 or (language == "en" and plainly_english(sample)):
            out.append(("", 0.0))
            continue
        found = detector.detect_language_of(sample)
        code = found.iso_code_639_1.name.lower() if found is not None else language.lower()
        if code != language.lower() and words < SHORT_TEXT_WORDS:  # a second, careful look
            values = _careful_detector(language).compute_language_confidence_values(sample)
            found = values[0].language if values else None
            code = found.iso_code_639_1.name.lower() if found is not None else language.lower()
            out.append(("", 0.0) if code == language.lower() else (code, values[0].value))
            continue
        if code == language.lower():
            out.append(("", 0.0))
            continue
        out.append((code, detector.compute_language_confidence(sample, found)))
    return out


def step_language(row: dict[str, Any], config: CleanConfig, language: str = "en") -> Change | None:
    found, confidence = language_verdicts([row["text"]], language)[0]
    if not found:
        return None
    if confidence >= config.language_min_confidence:
        return Change(f"not in the brand's language ({found}, expected {language}; lingua {confidence:.0%} sure)",
                      drop=True)
    return Change(f"kept: may not be in the brand's language (lingua says {found}, only {confidence:.0%} sure; "
                  f"a drop needs {config.language_min_confidence:.0%})", note=True,
                  details={"language": found, "confidence": round(confidence, 3)})
