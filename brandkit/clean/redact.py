"""Find personal data and replace it with typed placeholders, offline and without a model download.

Presidio's pattern recognisers do the well-defined cases (email with an offline public-suffix list,
payment cards with the Luhn check, IBANs with their checksum, IP addresses, phone numbers through
python-phonenumbers); a few patterns of our own cover what they miss in business text (555-style
and international phone formats, street addresses and postcodes, links carrying tokens). Names
need a language model to find in general; in business exports the names that matter are known:
the chat export's customer, the email's recipient, and greetings like "Hi Tom!". Staff and brand
names from the brand kit are never redacted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

PLACEHOLDER = {entity: f"[{entity}]" for entity in
               ("EMAIL", "PHONE", "CARD", "IBAN", "IP", "ADDRESS", "URL_WITH_TOKEN", "PERSON")}
PLACEHOLDER_PATTERN = re.compile(r"\[(?:" + "|".join(PLACEHOLDER) + r")\]")

PHONE_PATTERNS = [
    r"\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]\d{2,4}){1,4}",  # +1 555-0142, +44 20 5550 1234
    r"\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}",                                    # (555) 010-7788
    r"(?<![\w.\-])\d{3}[ .\-]\d{3}[ .\-]\d{4}(?![\w\-])",                   # 555.013.4421, 555 013 4421
    r"(?<![\w.\-#])555[ .\-]\d{4}(?![\w\-])",                                # 555-0142
    r"(?<![\w.\-])0\d{2,4}[ \-]\d{3,4}[ \-]?\d{3,4}(?![\w\-])",            # 020 7946 0018
]
STREET = (r"(?:Street|St|Road|Rd|Lane|Ln|Avenue|Ave|Row|Court|Ct|Close|Drive|Dr|Way|Place|Pl|Square|Sq|"
          r"Terrace|Crescent|Gardens|Grove|Hill|Parade|Walk|Mews|Yard|Wharf|Boulevard|Blvd|Cottages|Park)")
POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"
ADDRESS_PATTERNS = [
    rf"\b(?:(?:Flat|Apt|Unit)\s)?\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][\w'’\-]*\s+){{1,3}}{STREET}\b"
    rf"(?:,?\s+(?:[A-Z][a-z][\w'’\-]*\s?){{1,2}})?(?:,?\s*{POSTCODE}\b)?",
    rf"\b{POSTCODE}\b",
    r"\b[A-Z]{2}\s\d{5}(?:-\d{4})?\b",                                       # US state + ZIP
]
TOKEN_URL = re.compile(r"https?://[^\s<>\"')\]]+")
TOKEN_PARAMS = re.compile(r"[?&](?:token|key|sig|signature|auth|session|sid|code|access_token|t|k|hash|"
                          r"uid|email|e)=", re.I)
TOKEN_SEGMENT = re.compile(r"/(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{8,}(?:/|$|\?)")
VERSION_CONTEXT = re.compile(r"\b(?:version|ver\.?|v|release|firmware|build)\s*$", re.I)
GREETING = re.compile(r"\b(?:Hi|Hello|Hey|Dear|Morning|Afternoon|Evening|Thanks|Thank you|Cheers),?\s+"
                      r"((?:Mr|Mrs|Ms|Miss|Dr)\.?\s+)?([A-Z][a-z][a-z'’\-]*(?:\s[A-Z][a-z][a-z'’\-]*)?)\b")
NOT_NAMES = {"there", "all", "everyone", "team", "friend", "friends", "folks", "again", "so", "both", "you",
             "guys", "crew", "gang", "lovely", "again", "mate", "sir", "madam", "love"}


DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Finding:
    entity: str
    start: int
    end: int
    text: str
    score: float


def _offline_suffixes():
    import tldextract

    # The bundled public-suffix snapshot only: the default extractor downloads the list at first use.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@lru_cache(maxsize=8)
def _recognizers(entities: tuple[str, ...], phone_regions: tuple[str, ...]):
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
    )

    suffixes = _offline_suffixes()

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str):
            return suffixes(pattern_text).fqdn != ""

    chosen = []
    if "EMAIL" in entities:
        chosen.append(("EMAIL", OfflineEmailRecognizer(), "@"))
    if "CARD" in entities:
        chosen.append(("CARD", CreditCardRecognizer(), 12))
    if "IBAN" in entities:
        chosen.append(("IBAN", IbanRecognizer(), 10))
    if "IP" in entities:
        chosen.append(("IP", IpRecognizer(), 4))
    if "PHONE" in entities:
        chosen.append(("PHONE", PatternRecognizer(
            supported_entity="PHONE", name="phone_formats", global_regex_flags=re.MULTILINE,
            patterns=[Pattern(f"phone_{i}", p, 0.5) for i, p in enumerate(PHONE_PATTERNS)]), 7))
    if "ADDRESS" in entities:
        chosen.append(("ADDRESS", PatternRecognizer(
            supported_entity="ADDRESS", name="street_addresses", global_regex_flags=re.MULTILINE,
            patterns=[Pattern(f"address_{i}", p, 0.5) for i, p in enumerate(ADDRESS_PATTERNS)]), 1))
    return chosen


@lru_cache(maxsize=8)
def _phone_validator(phone_regions: tuple[str, ...]):
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    return PhoneRecognizer(supported_regions=phone_regions, leniency=1)


PHONE_LIKE = re.compile(r"[+(]?\d[\d \t().\-]{5,}\d")


class Redactor:
    """Finds personal data in a text and swaps it for [EMAIL], [PHONE], ... placeholders."""

    def __init__(self, entities: Iterable[str] = tuple(PLACEHOLDER), phone_regions: Iterable[str] = ("US", "GB"),
                 keep: Iterable[str] = ()):
        self.entities = tuple(e for e in entities if e in PLACEHOLDER)
        self.phone_regions = tuple(phone_regions)
        self.keep = [k.strip().lower() for k in keep if k and k.strip()]
        self.keep_words = {w for k in self.keep for w in re.findall(r"[a-z'’\-]+", k)}

    def _kept(self, text: str) -> bool:
        lowered = text.strip().lower()
        return any(lowered in k for k in self.keep)

    def find(self, text: str, names: Iterable[str] = ()) -> list[Finding]:
        """Every piece of personal data in text; names are people known to appear (customers)."""
        found: list[Finding] = []
        digits = len(DIGIT.findall(text))
        for entity, recognizer, needs in _recognizers(self.entities, self.phone_regions):
            # a cheap pre-check: most business text has nothing for most recognizers
            if (isinstance(needs, int) and digits < needs) or (isinstance(needs, str) and needs not in text):
                continue
            for result in recognizer.analyze(text, recognizer.supported_entities, None):
                span = text[result.start:result.end]
                if entity == "IP" and self._looks_like_version(text, result.start, result.end):
                    continue
                if entity == "PHONE" and not 7 <= sum(c.isdigit() for c in span) <= 15:
                    continue
                found.append(Finding(entity, result.start, result.end, span, result.score))
        if "PHONE" in self.entities and digits >= 7:
            found.extend(self._other_phones(text, found))
        if "URL_WITH_TOKEN" in self.entities and "http" in text:
            for match in TOKEN_URL.finditer(text):
                url = match.group().rstrip(".,;:!?")
                if TOKEN_PARAMS.search(url) or TOKEN_SEGMENT.search(url):
                    found.append(Finding("URL_WITH_TOKEN", match.start(), match.start() + len(url), url, 0.9))
        if "PERSON" in self.entities:
            found.extend(self._names(text, names))
        return self._resolve([f for f in found if not self._kept(f.text)])

    def _other_phones(self, text: str, found: list[Finding]) -> list[Finding]:
        """Phone-like digit runs our patterns did not claim, checked by python-phonenumbers.

        The matcher is thorough but slow over a whole text, so it only sees these short windows.
        """
        validator, out = _phone_validator(self.phone_regions), []
        for match in PHONE_LIKE.finditer(text):
            if any(f.start <= match.start() and match.end() <= f.end for f in found):
                continue
            start = max(0, match.start() - 1)
            window = text[start:match.end() + 1]
            for result in validator.analyze(window, validator.supported_entities, None):
                span = window[result.start:result.end]
                if 7 <= len(DIGIT.findall(span)) <= 15:
                    out.append(Finding("PHONE", start + result.start, start + result.end, span, result.score))
        return out

    def _looks_like_version(self, text: str, start: int, end: int) -> bool:
        before, after = text[max(0, start - 12):start], text[end:end + 2]
        return bool(VERSION_CONTEXT.search(before)) or after[:1] == "." and after[1:2].isdigit() or (
            start > 1 and text[start - 1] == "." and text[start - 2].isdigit())

    def _names(self, text: str, names: Iterable[str]) -> list[Finding]:
        wanted = set()
        for name in names:
            name = (name or "").strip()
            if not name or "@" in name:
                continue
            wanted.add(name)
            wanted.update(part for part in name.split() if len(part) > 2)
        found = []
        for name in sorted(wanted, key=len, reverse=True):
            if name.lower() in self.keep_words or name.lower() in NOT_NAMES:
                continue
            for match in re.finditer(rf"(?<![\w@.]){re.escape(name)}(?![\w@])", text):
                found.append(Finding("PERSON", match.start(), match.end(), match.group(), 0.85))
        for match in GREETING.finditer(text):
            name = match.group(2)
            first = name.split()[0].lower()
            if first in NOT_NAMES or first in self.keep_words or self._kept(name):
                continue
            found.append(Finding("PERSON", match.start(2), match.end(2), name, 0.6))
        return found

    @staticmethod
    def _resolve(findings: list[Finding]) -> list[Finding]:
        """Overlaps: the longer span wins, then the higher score."""
        chosen: list[Finding] = []
        for finding in sorted(findings, key=lambda f: (-(f.end - f.start), -f.score, f.start)):
            if all(finding.end <= c.start or finding.start >= c.end for c in chosen):
                chosen.append(finding)
        return sorted(chosen, key=lambda f: f.start)

    def redact(self, text: str, names: Iterable[str] = ()) -> tuple[str, Counter]:
        """The text with every finding replaced by its placeholder, and counts per entity."""
        findings = self.find(text, names)
        return replace(text, findings), Counter(f.entity for f in findings)


def replace(text: str, findings: list[Finding]) -> str:
    """Swap each (non-overlapping, sorted) finding for its placeholder."""
    parts, cursor = [], 0
    for finding in findings:
        parts += [text[cursor:finding.start], PLACEHOLDER[finding.entity]]
        cursor = finding.end
    return "".join(parts) + text[cursor:]


def placeholder_share(text: str) -> float:
    words = re.findall(r"\[[A-Z_]+\]|\w+", text)
    return sum(1 for w in words if PLACEHOLDER_PATTERN.fullmatch(w)) / len(words) if words else 0.0
