"""Content a document carries outside the fields it yields: hidden HTML, comments, EDI free text.

The parsers turn a document into an order's fields; whatever else the document carries is never
read by them, so an instruction hidden there would pass unseen: an HTML alternative behind a clean
text part, ``display:none`` or white-on-white text, HTML comments, X12 ``NTE``/``MSG`` notes and
EDIFACT ``FTX`` free text. This module reads exactly that content and reports it:

* ``hidden_content`` (warning): text a reader of the rendered document would not see (hidden
  elements, white or zero-size text, comments with words in them). A document has no honest
  reason to say something its reader cannot see, so the finding blocks auto-creation.
* ``injection_suspected`` (warning): instruction-like text (:func:`core.injection.find_injections`)
  in that content or in the free-text notes.
* ``unexplained_text`` (warning): free text an order has no use for (:func:`prose_findings`): a
  sentence that says nothing about the order, or more prose than any order needs. The detector's
  patterns are a second line; text not about the order goes to a person whatever it says.

The pipeline adds these to the parser's findings; validation turns them into blocking reasons, so
the order goes to a person with the finding. This module never changes the document or the order,
never raises on bad input, and bounds its work (parts, characters) whatever the input's size.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message
from html.parser import HTMLParser

from core.injection import find_injections, split_sentences, text_view
from intake.classify import DocFormat
from intake.model import Finding, Severity, Source

__all__ = [
    "MAX_PARTS",
    "MAX_TEXT",
    "OFF_ORDER_WORDS",
    "PROSE_WORDS",
    "content_findings",
    "html_findings",
    "page_text_findings",
    "prose_findings",
    "unwrap",
]

MAX_PARTS = 50
"""At most this many MIME parts are looked at."""
MAX_TEXT = 200_000
"""At most this many characters of one HTML part or of one document's notes are read."""

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})  # fmt: skip
_SKIP = frozenset({"style", "script", "head", "title"})
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|(?<![-\w])font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:;|$|!)"
    r"|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$|!)|(?<![-\w])(?:max-)?height\s*:\s*0(?:px)?\s*(?:;|$|!)"
    r"|(?:left|top|text-indent|margin-left)\s*:\s*-\d{3,}",
    re.IGNORECASE,
)
_WHITE = r"(?:#fff\b|#ffffff\b|white\b|rgb\(\s*255\s*,\s*255\s*,\s*255\s*\))"
_WHITE_TEXT = re.compile(rf"(?<![-\w])color\s*:\s*{_WHITE}", re.IGNORECASE)
_BACKGROUND = re.compile(r"background(?:-color)?\s*:\s*([^;]+)", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")


def _hidden(tag: str, attrs: dict[str, str]) -> bool:
    """Whether an element hides its text from a reader (hidden, zero-size, off-screen or white text)."""
    if "hidden" in attrs or (attrs.get("aria-hidden") == "true" and tag != "img"):
        return True
    style = attrs.get("style", "")
    if _HIDDEN_STYLE.search(style):
        return True
    if tag == "font" and re.fullmatch(r"\s*(?:white|#fff(?:fff)?)\s*", attrs.get("color", ""), re.IGNORECASE):
        return True
    if _WHITE_TEXT.search(style):
        # white text is visible on a dark background the same element sets; on anything else it is not
        bg = _BACKGROUND.search(style)
        return bg is None or re.search(_WHITE, bg.group(1), re.IGNORECASE) is not None
    return False


def _tags_out(text: str) -> str:
    """``text`` with each ``<...>`` (a "<", then up to the first ">" after it) made one space.

    Markup inside a comment is not words. The pattern this replaces, ``re.sub(r"<[^>]*>", " ",
    text)``, read from every "<" to the end when no ">" followed (a comment of 20,000 "<" took
    0.12 s, quadratic, and a part may hold 200,000 characters). One pass gives the same: the
    leftmost "<" with a ">" after it is cut through the first such ">" and the search goes on
    after it; once a "<" has no ">" after it, no later one has. (``<[^<>]*>`` would not be the
    same: it leaves the first "<" of ``<a<b>``.)
    """
    out: list[str] = []
    pos = 0
    while (lt := text.find("<", pos)) >= 0 and (gt := text.find(">", lt + 1)) >= 0:
        out += (text[pos:lt], " ")
        pos = gt + 1
    out.append(text[pos:])
    return "".join(out)


class _HiddenText(HTMLParser):
    """Collects the text of hidden elements, of comments, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.hidden: list[str] = []
        self.comments: list[str] = []
        self.visible: list[str] = []

    def _in_hidden(self) -> bool:
        return any(h for _, h in self.stack)

    def _in_skipped(self) -> bool:
        return any(t in _SKIP for t, _ in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        self.stack.append((tag, _hidden(tag, {k.lower(): (v or "") for k, v in attrs})))
        if len(self.stack) > 512:  # runaway nesting of unclosed tags: keep the innermost ones
            del self.stack[0]

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self._in_skipped():
            return
        (self.hidden if self._in_hidden() else self.visible).append(data)

    def handle_comment(self, data: str) -> None:
        body = data.strip()
        # Office conditional comments and commented-out CSS are markup, not words for a reader
        if body.startswith("[if") or body.startswith("<![endif]") or body.endswith("[endif]") or "{" in body:
            return
        self.comments.append(_tags_out(body))


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _f(code: str, message: str, document: str | None, kind: str = "email") -> Finding:
    return Finding(severity=Severity.WARNING, code=code, message=message,
                   source=Source(kind=kind, document=document))  # type: ignore[arg-type]  # fmt: skip


def _injections(text: str, where: str, document: str | None, kind: str) -> list[Finding]:
    out: list[Finding] = []
    for start, end in find_injections(text)[:5]:
        snippet = " ".join(text[start:end].split())[:120]
        out.append(_f("injection_suspected", f"{where}: instruction-like text aimed at the system: {snippet!r}",
                      document, kind))  # fmt: skip
    return out


def html_findings(html: str, *, document: str | None = None, where: str = "HTML part") -> list[Finding]:
    """Hidden text and comments with words in ``html``; instruction-like text anywhere in it."""
    p = _HiddenText()
    try:
        p.feed(html[:MAX_TEXT])
        p.close()
    except Exception:  # pragma: no cover - HTMLParser is lenient; keep what was read
        pass
    out: list[Finding] = []
    hidden = " ".join(" ".join(p.hidden).split())
    comments = " ".join(" ".join(p.comments).split())
    if _words(hidden) >= 2:
        out.append(_f("hidden_content", f"{where} carries text a reader cannot see (hidden, white or zero-size): "
                      f"{hidden[:120]!r}", document))  # fmt: skip
    if _words(comments) >= 3:
        out.append(_f("hidden_content", f"{where} carries words in HTML comments: {comments[:120]!r}", document))
    out += _injections(" \n".join([hidden, comments, " ".join(p.visible)]), where, document, "email")
    out += prose_findings("\n".join(p.visible), where=where, document=document)
    return out


PROSE_WORDS = 150
"""Words of prose (sentences of 8+ words without digits) beyond which a PO's free text is a finding."""
OFF_ORDER_WORDS = 9
"""A sentence of this many words or more that says nothing about an order is a finding."""
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")

# What a purchase order's free text is about: the order and its goods, delivery, packing, billing,
# contacts and references, greetings, and the legal boilerplate mail carries, in the languages the
# injection patterns cover (stems, matched on the folded view: lower case, no accents). A sentence
# with none of these is not written to a supplier's order desk, whatever else it is; it is read by
# a person before an order is created. This is an allowlist, not a detector: it needs no knowledge
# of attacks, and an attack that talks about orders still meets the injection patterns.
# fmt: off
_ORDER_TERMS = re.compile(r"\b(?:" + "|".join((
    # English: the order, goods and parties
    r"orders?|ordered|ordering|po|p\.o|purchas\w*|requisition\w*|items?|skus?|parts?|products?|goods|materials?",
    r"stock\w*|inventor\w*|supplier\w*|vendors?|buyers?|customers?|accounts?|seller\w*|clients?",
    r"quantit\w*|qty|units?|each|ea|pcs|pieces?|box\w*|cases?|cartons?|pallets?|packs?|packag\w*|packed|packing",
    r"labels?|samples?|models?|sizes?|colou?rs?|catalog\w*|spec\w*|sensors?|cables?",
    # delivery and shipping
    r"ship\w*|deliver\w*|dispatch\w*|freight|carriers?|couriers?|trucks?|loads?|docks?|ramps?|warehouse\w*|dc",
    r"liftgate|fragile|routing|tracking|backorder\w*|split\w*|partial|arriv\w*|pick\w*|receiv\w*|receipt\w*",
    r"deadline|due|dates?|window|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekdays?|weekends?",
    r"morning|afternoon|noon|hours?|asap|urgent\w*|rush|expedit\w*|hold|cancel\w*|replac\w*|revis\w*|amend\w*",
    # money and paperwork
    r"invoic\w*|bill\w*|pric\w*|costs?|quot\w*|contracts?|terms|net|payments?|pay|paid|cents?|currency|usd|eur",
    r"discounts?|tax\w*|totals?|amounts?|credit|references?|confirm\w*|acknowledg\w*|copy|copies|attach\w*",
    r"edi|erp|sap|system|records?|forms?|documents?|duplicates?|previous|original",
    # people and contact
    r"contacts?|call|phone|ext|e-?mail\w*|fax|questions?|thanks?|thank\w*|regards|sincerely|cheers|dear|hello|hi",
    r"service|team|department|manager|administrator|office",
    # where it goes: sending, addresses and the places goods are sent to
    r"send|sends|sending|sent|address\w*|headquarters|hq|offices|sites?|locations?|facilit\w*|plants?|stores?",
    r"branch\w*|depots?|street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln|court|ct|highway|hwy|suite",
    r"ste|floor|building|bldg|zip|postal|postcode",
    # ordering again: supplies, restocking, setting a buyer up with goods
    r"suppl(?:y|ies)|restock\w*|reorder\w*|replenish\w*|set\s+(?:us|me|them)\s+up",
    # legal boilerplate of business mail
    r"confidential\w*|intended|recipients?|addressee\w*|privileged|disclos\w*|notify|sender|messages?|virus\w*",
    r"unsubscrib\w*|prohibited|liabilit\w*|warrant\w*|agreements?|law",
    # the terms and conditions a purchase order prints
    r"provisions?|sections?|clauses?|here(?:in|under|of|by)|there(?:of|under)|invalid\w*|enforc\w*|sever\w*",
    r"waive\w*|remed\w*|damages|breach\w*|terminat\w*|assign\w*|subcontract\w*|indemn\w*|insur\w*",
    r"complian\w*|regulat\w*|statut\w*|acts?|courts?|jurisdiction|arbitrat\w*|disputes?|govern\w*|consent",
    r"rights?|obligations?|part(?:y|ies)|title|risk|loss|inspect\w*|accept\w*|reject\w*|defect\w*|conform\w*",
    r"force\s+majeure|audit\w*|export\w*|storage|crating|drayage|handling|demurrage|goods|services",
    # German, French, Spanish, Portuguese, Italian, Dutch
    r"bestell\w*|auftrag\w*|liefer\w*|rampe|rechnung\w*|preis\w*|menge\w*|artikel|versand\w*|ware\w*|lager\w*",
    r"command\w*|livr\w*|factur\w*|prix|quantite\w*|quai|expedi\w*|merci",
    r"pedido\w*|entreg\w*|precio\w*|cantidad\w*|envio\w*|almacen\w*|gracias|fatura\w*|preco\w*|quantidade\w*",
    r"obrigad\w*|ordin\w*|consegn\w*|fattur\w*|prezz\w*|spedizion\w*|grazie",
    r"leveren|levering\w*|factuur\w*|prijs\w*|aantal|verzend\w*|magazijn\w*|bedankt|dank",
    # Polish, Turkish, Swedish, Russian
    r"zamowien\w*|dostaw\w*|faktur\w*|cen[aeyi]|ilosc\w*|wysylk\w*|magazyn\w*|dziekuj\w*",
    r"siparis\w*|teslim\w*|fiyat\w*|miktar\w*|sevk\w*|depo\w*|tesekkur\w*",
    r"bestallning\w*|leverera\w*|leverans\w*|pris\w*|antal|frakt\w*|tack",
    r"заказ\w*|достав\w*|постав\w*|сч[её]т\w*|цен\w*|количеств\w*|склад\w*|отгруз\w*|спасибо",
)) + r")\b")
# fmt: on


# Contact details and the header lines of a forwarded message are not sentences. The e-mail
# alternative is tried only where a run of non-space starts: it was ``\S+@\S+``, which from every
# start inside a run with no "@" read to the run's end and back (a 20,000-character word took
# 0.55 s, quadratic: 55 s at MAX_TEXT). Same matches: where it fails at a run's start it fails at
# every later start in the run (fewer characters before each "@"), and every match ends at the end
# of its run, so a scan never resumes inside one.
_ADDRESSES = re.compile(r"(?<!\S)\S+@\S+|\b(?:https?|ftp)://\S+|\bwww\.\S+", re.IGNORECASE)
_MAIL_HEADER = re.compile(r"^\W*(?:from|to|cc|bcc|sent|date|subject|reply-to|von|an|betreff|gesendet|de|para|a|"
                          r"objet|envoye|asunto|enviado|oggetto|inviato|da|van|aan|onderwerp|verzonden)\s*:",
                          re.IGNORECASE)  # fmt: skip


def _off_order(sentence: str) -> bool:
    """A sentence of :data:`OFF_ORDER_WORDS`+ words with no word about an order (see ``_ORDER_TERMS``)."""
    if _MAIL_HEADER.match(text_view(sentence, fold_homoglyphs=False).text):
        return False
    sentence = _ADDRESSES.sub(" ", sentence)
    if _words(sentence) < OFF_ORDER_WORDS:
        return False
    tokens = sentence.split()
    if sum(any(ch.isdigit() for ch in t) for t in tokens) * 4 >= len(tokens):
        return False  # an order line or an address: codes, quantities, prices
    view = text_view(sentence, fold_homoglyphs=False).text
    return _ORDER_TERMS.search(view) is None


WRAP_COLUMNS = 60
"""A plain-text line at least this long that stops mid-sentence was wrapped by the mail program."""
_LIST_ITEM = re.compile(r"^\s*(?:[-*+>\u2022\u00b7]|\(?\d{1,3}[.)])\s")
_SENTENCE_STOP = (".", "!", "?", ":", ";")
# A wrapped line's last word: a sentence does not end with a comma, an article, a preposition, a
# conjunction or a pronoun, so the next line goes on with it whatever letter it starts with.
_OPEN_END = re.compile(r"(?:,|\b(?:and|or|but|nor|so|the|a|an|of|to|for|in|at|by|with|from|on|as|our|your|"
                       r"their|my|its|this|that|these|those|we|we'd|we'll|i|i'd|you|is|are|be|please))\s*$",
                       re.IGNORECASE)  # fmt: skip


def _digit_heavy(line: str) -> bool:
    """An order line or an address line: a quarter or more of its tokens carry digits."""
    tokens = line.split()
    return sum(any(ch.isdigit() for ch in t) for t in tokens) * 4 >= len(tokens)


def _continues(prev: str, line: str) -> bool:
    """Whether ``line`` goes on with the sentence ``prev`` was cut in by hard wrapping: ``prev`` is a
    full-width prose line that stops mid-sentence, and ``line`` is neither a list item, an order
    line nor a header, and starts in lower case or follows a word no sentence ends with."""
    p, nxt = prev.rstrip(), line.strip()
    if len(p) < WRAP_COLUMNS or p.endswith(_SENTENCE_STOP) or not nxt or _digit_heavy(p) or _digit_heavy(nxt):
        return False
    if _LIST_ITEM.match(line) or _LIST_ITEM.match(prev) or _MAIL_HEADER.match(nxt):
        return False
    return nxt[0].islower() or _OPEN_END.search(p) is not None


def unwrap(text: str) -> str:
    """Plain-text mail with the line breaks its mail program put inside sentences taken out.

    Mail is hard-wrapped at 72-80 columns, so a sentence runs over lines and a cut at every line
    break judges half sentences ("... 1975 Industrial Ct, Dallas TX 77015, and we'd"). Paragraph
    breaks, list items, order lines, headers and short lines (greetings, signatures) stay lines."""
    out: list[str] = []
    prev = ""
    for line in text.splitlines():
        if out and _continues(prev, line):
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
        prev = line
    return "\n".join(out)


def prose_findings(
    text: str, *, where: str, document: str | None, kind: str = "email", wrapped: bool = False
) -> list[Finding]:
    """Free text a purchase order has no use for is a finding that sends the order to a person.

    Two rules, neither about what an attack looks like:

    * a sentence of :data:`OFF_ORDER_WORDS` or more words that says nothing about the order, its
      goods, delivery, billing or contacts (role-play, questions for a chatbot, a story);
    * a long run of prose: order lines, addresses and notes are short or carry digits, and a greeting
      and a disclaimer stay under :data:`PROSE_WORDS`. Past it, a person reads it before an order.

    ``wrapped``: ``text`` is plain-text mail, whose line breaks inside a paragraph are the mail
    program's, not the writer's (:func:`unwrap`); sentences are judged whole."""
    words = 0
    off: list[str] = []
    body = text[:MAX_TEXT]
    for sentence in split_sentences(unwrap(body) if wrapped else body):
        if len(off) < 3 and _off_order(sentence):
            off.append(" ".join(sentence.split())[:100])
    for m in _SENTENCE.finditer(text[:MAX_TEXT]):
        sentence = m.group(0)
        n = _words(sentence)
        if n >= 8 and not any(ch.isdigit() for ch in sentence):
            words += n
    out: list[Finding] = []
    if off:
        out.append(_f("unexplained_text", f"{where} carries text that is not about the order: {off[0]!r}; a "
                      "person should read it", document, kind))  # fmt: skip
    if words >= PROSE_WORDS:
        out.append(_f("unexplained_text", f"{where} carries {words} words of prose that no order field uses; a "
                      "person should read it", document, kind))  # fmt: skip
    return out


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n|\f")
_ABBREVIATION = re.compile(r"\b(co|inc|ltd|corp|llc|bros|no|nr|st|ave|rd|blvd|dept|ste|mr|mrs|ms|dr|jr|sr|ref|tel|"
                           r"ext|approx|pcs|qty|vol|art|ca|bzw|usw|etc|e\.g|i\.e)\.", re.IGNORECASE)  # fmt: skip
_TERMINATOR = re.compile(r"[.!?]")
_LETTER = re.compile(r"[^\W\d_]")


def prose_sentences(text: str) -> list[str]:
    """The sentences of ``text``: each run up to a full stop, ``!`` or ``?`` that is followed by
    whitespace or the end and that holds a letter, starting after the previous stop.

    What ``re.finditer(r"[^.!?]*[^\\W\\d_][^.!?]*[.!?](?=\\s|$)", text)`` finds, in one pass: that
    pattern backtracks over every split of a run between the two stars at every start, so a
    paragraph without a stop took cubic time (44 s for 4,000 characters; a hostile PDF page could
    hold intake for hours). Here each stop is looked at once."""
    out: list[str] = []
    start = 0
    for m in _TERMINATOR.finditer(text):
        end = m.end()
        if (end == len(text) or text[end].isspace()) and _LETTER.search(text, start, end - 1):
            out.append(text[start:end])
        start = end
    return out


def _prose_line(line: str) -> bool:
    """A line that can be part of a sentence: not a table row or an address line (a quarter or more
    of its tokens carry digits), not a short label or name (under four words, no full stop)."""
    tokens = line.split()
    if not tokens or sum(any(ch.isdigit() for ch in t) for t in tokens) * 4 >= len(tokens):
        return False
    return len(tokens) >= 4 or line.rstrip().endswith((".", "!", "?"))


def page_text_findings(text: str, *, document: str | None, where: str = "PDF text") -> list[Finding]:
    """:func:`prose_findings` for laid-out page text (PDF, OCR).

    A page's lines are cut by the layout, not by the writer, and most lines are labels, names and
    table rows. Lines are joined into paragraphs and only sentences that end as sentences do
    (``.``, ``!``, ``?``) are judged; a title or a company name on its own line is not prose."""
    sentences: list[str] = []
    for para in _PARAGRAPH_BREAK.split(text[:MAX_TEXT]):
        kept = [ln for ln in para.splitlines() if _prose_line(ln)]
        joined = _ABBREVIATION.sub(r"\1", " ".join(" ".join(kept).split()))
        sentences += [s.strip() for s in prose_sentences(joined)]
    return prose_findings("\n".join(sentences), where=where, document=document, kind="pdf")


def _email(data: bytes, document: str | None) -> list[Finding]:
    try:
        msg = email.message_from_bytes(data[: 8 * MAX_TEXT], policy=email.policy.default)
    except Exception:  # pragma: no cover - the mail parser reports malformed mail itself
        return []
    out: list[Finding] = []
    for n, part in enumerate(msg.walk()):
        if n >= MAX_PARTS:
            break
        if part.get_content_type() == "text/html":
            out += html_findings(_text_of(part), document=document, where=f"HTML part {n}")
        elif part.get_content_type() == "text/plain":
            out += prose_findings(_text_of(part), where=f"text part {n}", document=document, wrapped=True)
    return out


def _text_of(part: Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw[: 4 * MAX_TEXT].decode(charset, errors="replace")
    except LookupError:
        return raw[: 4 * MAX_TEXT].decode("latin-1")


def _notes(notes: list[str], label: str, document: str | None) -> list[Finding]:
    # A note split over several segments is read both joined as written and with spaces between.
    if not notes:
        return []
    text = " ".join(notes)[:MAX_TEXT] + "\n" + "".join(notes)[:MAX_TEXT]
    return _injections(text, label, document, "edi") + prose_findings(" ".join(notes), where=label,
                                                                      document=document, kind="edi")  # fmt: skip


def _x12(data: bytes, document: str | None) -> list[Finding]:
    from intake.x12.tokenizer import decode, tokenize

    interchanges, _ = tokenize(decode(data), document=document)
    notes = [
        seg.get(2) if seg.tag == "NTE" else seg.get(1)
        for ic in interchanges
        for seg in ic.segments
        if seg.tag in ("NTE", "MSG", "MTX")
    ]
    return _notes([n for n in notes if n], "X12 notes (NTE/MSG)", document)


def _edifact(data: bytes, document: str | None) -> list[Finding]:
    from intake.edifact import decode_edifact, tokenize_edifact

    # decoded in the character set the UNB names (a Cyrillic note under UNOE is read as Cyrillic)
    text, _ = decode_edifact(data, document=document)
    _, segments, _ = tokenize_edifact(text, document=document)
    # Each component of 4440 is read on its own: writers that cut free text at a fixed width split
    # words across components (and segments), so the scan must also see them joined as written.
    notes = [c for seg in segments if seg.tag == "FTX" and len(seg.elements) > 4 for c in seg.elements[4]]
    return _notes([n for n in notes if n.strip()], "EDIFACT free text (FTX)", document)


def content_findings(data: bytes, fmt: DocFormat | str, *, document: str | None = None) -> list[Finding]:
    """Findings about what ``data`` carries beyond the fields its parser yields (see the module docstring)."""
    try:
        if fmt == DocFormat.EMAIL:
            return _email(data, document)
        if fmt == DocFormat.HTML:
            return html_findings(data[: 4 * MAX_TEXT].decode("utf-8", errors="replace"), document=document)
        if fmt == DocFormat.X12:
            return _x12(data, document)
        if fmt == DocFormat.EDIFACT:
            return _edifact(data, document)
    except Exception as exc:  # never let a look at the margins break intake: say so instead
        return [_f("hidden_content", f"could not read the document's other content ({type(exc).__name__}); a "
                   "person should look", document)]  # fmt: skip
    return []
