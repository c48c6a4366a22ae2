"""OCR for scanned purchase orders: page image -> words with boxes and confidences.

A PDF page with images and no text layer is rendered (pypdfium2, through pdfplumber) at
:attr:`OcrLimits.dpi`, straightened (a projection-profile search over +-3 degrees: scanners and
phone photos tilt pages by a degree or two, and tesseract reads a tilted table row as two), its
ruling lines are painted out (tesseract reads a boxed cell's border as ``|`` or ``I`` and drops
short numbers in narrow boxed columns), and Debian's tesseract (through pytesseract) reads it.

The words come back in PDF points in the form ``pdfplumber``'s ``extract_words`` gives
(``text``, ``x0``, ``x1``, ``top``, ``bottom``, plus ``conf`` 0..1), so :mod:`intake.pdf` builds
lines, header fields and tables from them exactly as from a text layer. Each word's confidence is
kept (:class:`OcrWord`), and :func:`field_confidences` gives every extracted field the lowest
confidence of the words it was read from: the intake decision never creates an order from OCR on
its own (:mod:`intake.decide`), and a reviewer sees which fields to check.

Runs inside the parse sandbox (:mod:`intake.sandbox`): tesseract is a child of the capped parse
process, gets a timeout from what is left of :attr:`OcrLimits.max_seconds`, and a missing
tesseract or a failed run is a finding (``ocr_unavailable``, ``ocr_failed``, ``ocr_timeout``),
never an exception.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from intake.model import Finding, PurchaseOrder, Severity, Source

__all__ = [
    "OCR_CODES",
    "OCR_DOCUMENT_TYPE",
    "OcrLimits",
    "OcrState",
    "OcrWord",
    "field_confidences",
    "low_confidence",
    "ocr_findings",
    "read_page",
    "tesseract_version",
]

OCR_DOCUMENT_TYPE = "pdf-ocr"
"""``PurchaseOrder.document_type`` of an order read (in part) by OCR: never created automatically."""

OCR_CODES = frozenset({"ocr_read", "ocr_low_confidence", "ocr_unavailable", "ocr_failed", "ocr_timeout"})


@dataclass(frozen=True)
class OcrLimits:
    enabled: bool = True
    dpi: int = 300
    """Render resolution: tesseract is trained on ~300 dpi text (10 pt is then ~30 px high)."""
    max_seconds: float = 24.0
    """OCR time for the whole document (a page takes ~5-8 s on one core); it must fit in the parse
    sandbox's wall time (30 s by default), which kills the parse whatever this says."""
    max_pixels: int = 40_000_000
    """A page rendered larger than this (a huge page size) is rendered at a lower resolution."""
    review_confidence: float = 0.90
    """Fields read with a lower word confidence get an ``ocr_low_confidence`` warning."""
    language: str = "eng"
    psm: int = 6
    """Tesseract page segmentation: 6 (one block) reads a form's rows whole once its rules are
    gone; 3 and 4 dropped boxed header cells and short quantities on the corpus scans, 11 the
    quantities."""


@dataclass(frozen=True, slots=True)
class OcrWord:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    page: int
    conf: float
    """Tesseract's word confidence, 0..1."""


@dataclass
class OcrState:
    """What OCR read in one document: its words (for field confidences) and the time it used."""

    limits: OcrLimits
    words: list[OcrWord]
    pages: list[int]
    seconds: float = 0.0
    gave_up: bool = False

    @classmethod
    def new(cls, limits: OcrLimits | None = None) -> OcrState:
        return cls(limits or OcrLimits(), [], [])


def tesseract_version() -> str | None:
    """The installed tesseract's version, or None when there is none to run."""
    if shutil.which("tesseract") is None:
        return None
    try:
        import pytesseract

        return str(pytesseract.get_tesseract_version())
    except Exception:
        return None


def _finding(sev: Severity, code: str, msg: str, document: str | None, page: int | None) -> Finding:
    return Finding(severity=sev, code=code, message=msg, source=Source(kind="pdf", document=document, page=page))


# --- image preparation --------------------------------------------------------------------------------


def _binary(img: Any, threshold: int = 150) -> Any:
    """Ink as 255, paper as 0 (mode L)."""
    return img.point(lambda v: 255 if v < threshold else 0)


def skew_angle(img: Any, *, max_degrees: float = 3.0) -> float:
    """The rotation (degrees, counter-clockwise) that makes text rows horizontal.

    Projection profile: rows of text give a spiky row-ink profile when level and a smeared one
    when tilted, so the angle whose profile has the largest variance wins. Coarse then fine, on a
    downscaled copy with the page edges cropped (a scanner's dark border is not text)."""
    from PIL import Image

    w, h = img.size
    crop = img.crop((int(w * 0.06), int(h * 0.06), int(w * 0.94), int(h * 0.94)))
    crop.thumbnail((1000, 1000))
    ink = _binary(crop)

    def score(angle: float) -> float:
        r = ink.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=0)
        rows = r.resize((1, r.height), Image.Resampling.BOX).tobytes()  # mode L: one byte per row
        mean = sum(rows) / len(rows)
        return float(sum((v - mean) ** 2 for v in rows))

    best = max((score(a / 2), a / 2) for a in range(int(-max_degrees * 2), int(max_degrees * 2) + 1))[1]
    fine = max((score(best + d / 10), best + d / 10) for d in range(-4, 5))[1]
    return round(fine, 2)


_RUN_H = re.compile(rb"\xff{100,}")


def remove_rules(img: Any) -> Any:
    """The page with long horizontal and vertical ink runs (table rules, box borders) painted white.

    Runs are found row by row on the binary image with a bytes regex (no numpy): a run of ink
    longer than about a centimetre at 300 dpi is a rule, never a glyph."""
    from PIL import Image, ImageFilter

    # A glyph is never a straight run of 100 px (1/3 inch at 300 dpi). Not dilated and not a light
    # threshold: blurred letters would merge into runs and lose their middles.
    ink = _binary(img, 170)
    mask = Image.new("L", img.size, 0)
    for flipped in (False, True):
        src = ink.transpose(Image.Transpose.TRANSPOSE) if flipped else ink
        w, h = src.size
        raw = src.tobytes()
        m = bytearray(w * h)
        for y in range(h):
            row = raw[y * w : (y + 1) * w]
            if b"\xff" * 100 not in row:
                continue
            for run in _RUN_H.finditer(row):
                m[y * w + run.start() : y * w + run.end()] = b"\xff" * (run.end() - run.start())
        part = Image.frombytes("L", (w, h), bytes(m))
        if flipped:
            part = part.transpose(Image.Transpose.TRANSPOSE)
        mask.paste(255, (0, 0), part)
    mask = mask.filter(ImageFilter.MaxFilter(3))
    out = img.copy()
    out.paste(255, (0, 0), mask)
    return out


# --- reading ------------------------------------------------------------------------------------------


@contextmanager
def _one_thread() -> Iterator[None]:
    """Tesseract on one OpenMP thread: on a busy machine its threads wait on each other (a page
    took 15 s with the default, 7 s with one thread, on two shared cores)."""
    old = os.environ.get("OMP_THREAD_LIMIT")
    os.environ["OMP_THREAD_LIMIT"] = old or "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)


def _render(page: Any, limits: OcrLimits) -> tuple[Any, float]:
    """The page as a greyscale image and its points-per-pixel scale."""
    dpi = limits.dpi
    w_pt, h_pt = float(page.width), float(page.height)
    while dpi > 72 and (w_pt * dpi / 72) * (h_pt * dpi / 72) > limits.max_pixels:
        dpi = int(dpi * 0.8)
    img = page.to_image(resolution=dpi, antialias=True).original.convert("L")
    return img, 72.0 / dpi


def _words(data: dict[str, list[Any]], scale: float, page_no: int) -> list[OcrWord]:
    """Tesseract's words, each with the top and bottom of its line (a lower-case word's box is
    shorter than its capitalised neighbour's; the line's box keeps a row's words on one line)."""
    n = len(data.get("text", []))
    lines: dict[tuple[int, int, int], tuple[int, int]] = {}
    for i in range(n):
        if int(data["level"][i]) == 4:
            key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
            lines[key] = (int(data["top"][i]), int(data["top"][i]) + int(data["height"][i]))
    out: list[OcrWord] = []
    for i in range(n):
        text = str(data["text"][i]).strip()
        conf = float(data["conf"][i])
        if int(data["level"][i]) != 5 or not text or conf < 0:
            continue
        if conf < 30 and not any(ch.isalnum() for ch in text):
            continue  # specks and streaks read as punctuation
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        top, bottom = lines.get(key, (int(data["top"][i]), int(data["top"][i]) + int(data["height"][i])))
        left, width = int(data["left"][i]), int(data["width"][i])
        for piece, p_left, p_width in _split_at_rules(" ".join(_split_joined(text)), left, width):
            piece = _clean(piece)
            if not piece:
                continue
            word = OcrWord(text=piece, x0=round(p_left * scale, 2), x1=round((p_left + p_width) * scale, 2),
                           top=round(top * scale, 2), bottom=round(bottom * scale, 2), page=page_no,
                           conf=round(conf / 100, 3))  # fmt: skip
            prev = out[-1] if out else None
            if prev is not None and _continues_number(prev, word):
                out[-1] = OcrWord(text=prev.text + word.text, x0=prev.x0, x1=word.x1, top=prev.top,
                                  bottom=prev.bottom, page=page_no, conf=min(prev.conf, word.conf))  # fmt: skip
                continue
            out.append(word)
    return out


_RULE_CHARS = re.compile(r"[|\\\u00a6 ]+")


def _split_at_rules(text: str, left: int, width: int) -> list[tuple[str, int, int]]:
    """``5\\case`` -> ``5`` and ``case``: a column rule read as a stroke inside a word; the
    pieces' boxes are shares of the word's box by character count."""
    if not _RULE_CHARS.search(text):
        return [(text, left, width)]
    out: list[tuple[str, int, int]] = []
    per = width / max(1, len(text))
    pos = 0
    for m in [*_RULE_CHARS.finditer(text), None]:
        end = m.start() if m is not None else len(text)
        if end > pos:
            out.append((text[pos:end], left + round(pos * per), max(1, round((end - pos) * per))))
        if m is not None:
            pos = m.end()
    return out


_KEEP_SYMBOLS = frozenset("#&$%-/")
_EDGE_JUNK = "|_~`'\"\u2018\u2019\u201c\u201d\u00a9\u00ae=<>{}[]\u00a6*"
_NUMBER = re.compile(r"[$€£]?\d[\d,.]*\d|\d")


_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "S": "5", "B": "8", "g": "9"})
_DECIMAL = re.compile(r"\d+[.,]\d{2,4}")
_CODE_WITH_O = re.compile(r"[A-Z]{2,}(O)\d{2,}")
_O_IN_DIGITS = re.compile(r"(?<=\d)O(?=\d)")
_JOINED_WORDS = re.compile(r"^([A-Z]{2,})'([A-Z]{2,}\W*)$")


def _clean(text: str) -> str:
    """A word without the specks, streaks and box edges tesseract reads as punctuation around it
    (``“8.00``, ``36.3000.``, ``|``); a word that is only such marks is dropped. A decimal with
    one letter that looks like a digit (``g.00``, ``4O.50``) gets the digit: the line is kept,
    and the word's low confidence still sends that field to a person."""
    if not any(ch.isalnum() for ch in text):
        return text if text in _KEEP_SYMBOLS else ""
    text = text.strip(_EDGE_JUNK)
    core = text.rstrip(".,:;")
    if core and _NUMBER.fullmatch(core):
        return core
    # Tesseract's O for 0 between digits (``1O5``) and at a code's letter/digit seam (``LPLO881``:
    # two or more letters, then digits; ``PO123`` keeps its O).
    text = _O_IN_DIGITS.sub("0", text)
    code = _CODE_WITH_O.fullmatch(text)
    if code is not None:
        return text[: code.start(1)] + "0" + text[code.end(1) :]
    if core and sum(ch.isdigit() for ch in core) >= 2 and sum(not ch.isdigit() and ch not in ".," for ch in core) == 1:
        mapped = core.translate(_DIGIT_LOOKALIKES)
        if _DECIMAL.fullmatch(mapped):
            return mapped
    return text


_FORM_WORDS_TEXT = (
    "ITEM NUMBER NO ORDER PURCHASE TOTAL NET UNIT COST PRICE AMOUNT EXTENSION QTY QUANTITY DESCRIPTION PART "
    "DATE SHIP VIA TO BILL VENDOR SUPPLIER CUSTOMER BUYER REQUIRED DELIVERY DUE TERMS CONFIRM AUTHORIZED "
    "SIGNATURE SALES TAX FREIGHT PAGE OF LINE CODE REF REFERENCE ACCOUNT CONTACT PHONE FAX EMAIL ADDRESS "
    "RECEIPT REQUESTED PROMISED NEED BY MEASURE UOM WEIGHT DISCOUNT SUBTOTAL BALANCE"
)
_FORM_WORDS = frozenset(_FORM_WORDS_TEXT.split())
"""Words printed on order forms; small capitals often come back from tesseract without the space
between two of them (``ITEMNUMBER``, ``ORDERTOTAL``)."""


def _split_joined(text: str) -> list[str]:
    """``ORDER'NO,`` -> ``ORDER`` ``NO.``: a space read as an apostrophe between two capitalised
    words (``BUYER'S`` and ``O'NEIL`` keep theirs: one letter on a side); ``ITEMNUMBER`` ->
    ``ITEM`` ``NUMBER`` (two form words run together); ``NO,`` -> ``NO.`` (comma for period)."""
    m = _JOINED_WORDS.match(text)
    parts = [m.group(1), m.group(2)] if m else [text]
    out: list[str] = []
    for part in parts:
        core = part.rstrip(":.,")
        if core.isalpha() and core.isupper() and len(core) >= 6 and core not in _FORM_WORDS:
            cut = next((i for i in range(2, len(core) - 1) if core[:i] in _FORM_WORDS and core[i:] in _FORM_WORDS),
                       None)  # fmt: skip
            if cut is not None:
                out += [core[:cut], core[cut:] + part[len(core) :]]
                continue
        out.append(part[:2] + "." if part in ("NO,", "No,") else part)
    return out


def _continues_number(prev: OcrWord, word: OcrWord) -> bool:
    """``48 .9300`` is one number that tesseract split at the decimal mark."""
    gap = word.x0 - prev.x1
    height = max(1.0, prev.bottom - prev.top)
    return (
        word.top == prev.top
        and 0 <= gap < 0.5 * height
        and prev.text[-1:].isdigit()
        and re.fullmatch(r"[.,]\d+", word.text) is not None
    )


def read_page(
    page: Any,
    page_no: int,
    state: OcrState,
    findings: list[Finding],
    *,
    document: str | None = None,
    timer: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """OCR one image-only page; the words as ``pdfplumber.Page.extract_words`` dicts (PDF points,
    top-left origin) plus ``conf``. Never raises: problems are findings, and the page is then empty."""
    limits = state.limits
    if state.gave_up or not limits.enabled:
        return []
    left = limits.max_seconds - state.seconds
    if left <= 1:
        state.gave_up = True
        findings.append(_finding(Severity.ERROR, "ocr_timeout", f"page {page_no} and later not read: OCR used its "
                                 f"{limits.max_seconds:g}s budget", document, page_no))  # fmt: skip
        return []
    if tesseract_version() is None:
        state.gave_up = True
        findings.append(_finding(Severity.ERROR, "ocr_unavailable", "the PDF has no text layer (scanned?) and "
                                 "tesseract is not installed to read it", document, page_no))  # fmt: skip
        return []
    t0 = timer()
    try:
        import pytesseract

        img, scale = _render(page, limits)
        angle = skew_angle(img)
        if abs(angle) >= 0.1:
            from PIL import Image

            img = img.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
        img = remove_rules(img)
        # what is left of the budget after rendering; a floor so tesseract is started and killed
        # cleanly rather than given a zero timeout (a full page never reads in 0.2 s)
        remaining = max(0.2, limits.max_seconds - state.seconds - (timer() - t0))
        with _one_thread():
            data = pytesseract.image_to_data(img, lang=limits.language, config=f"--psm {limits.psm}",
                                             output_type=pytesseract.Output.DICT, timeout=remaining)  # fmt: skip
    except RuntimeError as exc:  # pytesseract's timeout
        state.gave_up = True
        state.seconds += timer() - t0
        if "timeout" in str(exc).lower():
            findings.append(_finding(Severity.ERROR, "ocr_timeout", f"page {page_no}: OCR stopped at the "
                                     f"{limits.max_seconds:g}s budget", document, page_no))  # fmt: skip
        else:
            findings.append(_finding(Severity.ERROR, "ocr_failed", f"page {page_no}: {exc}"[:300], document, page_no))
        return []
    except MemoryError:
        raise  # the sandbox reports it as the memory limit
    except Exception as exc:
        state.seconds += timer() - t0
        findings.append(_finding(Severity.ERROR, "ocr_failed", f"page {page_no}: {type(exc).__name__}: {exc}"[:300],
                                 document, page_no))  # fmt: skip
        return []
    state.seconds += timer() - t0
    words = _words(data, scale, page_no)
    state.words += words
    state.pages.append(page_no)
    return [{"text": w.text, "x0": w.x0, "x1": w.x1, "top": w.top, "bottom": w.bottom, "conf": w.conf}
            for w in words]  # fmt: skip


# --- confidences --------------------------------------------------------------------------------------


def _inside(w: OcrWord, bbox: tuple[float, float, float, float]) -> bool:
    cx, cy = (w.x0 + w.x1) / 2, (w.top + w.bottom) / 2
    return bbox[0] - 1 <= cx <= bbox[2] + 1 and bbox[1] - 1 <= cy <= bbox[3] + 1


def field_confidences(po: PurchaseOrder, state: OcrState) -> dict[str, float]:
    """Field path -> the lowest confidence of the OCR words inside the box the field came from.

    A field whose box holds no OCR word (a value put together from several places) gets the
    page's lowest word confidence: unknown is treated as the worst case, never as certain."""
    by_page: dict[int, list[OcrWord]] = {}
    for w in state.words:
        by_page.setdefault(w.page, []).append(w)
    out: dict[str, float] = {}
    for key, src in po.sources.items():
        if src.page is None or src.page not in by_page:
            continue
        words = by_page[src.page]
        hit = [w.conf for w in words if src.bbox is not None and _inside(w, src.bbox)]
        out[key] = min(hit) if hit else min(w.conf for w in words)
    return out


_LOW = re.compile(r"^(?P<key>\S+): read by OCR with confidence (?P<conf>[01]\.\d+)$")


def low_confidence(f: Finding) -> tuple[str, float] | None:
    """``(field path, confidence)`` of an ``ocr_low_confidence`` finding (None for any other)."""
    m = _LOW.match(f.message) if f.code == "ocr_low_confidence" else None
    return (m.group("key"), float(m.group("conf"))) if m else None


def ocr_findings(po: PurchaseOrder | None, state: OcrState, *, document: str | None = None) -> list[Finding]:
    """An ``ocr_read`` WARNING (which pages, the mean confidence, the weakest fields) and one
    ``ocr_low_confidence`` WARNING per field under :attr:`OcrLimits.review_confidence`; the order
    is marked :data:`OCR_DOCUMENT_TYPE`. Every finding names the field and its confidence."""
    if not state.pages:
        return []
    pages = ", ".join(str(p) for p in state.pages)
    mean = sum(w.conf for w in state.words) / len(state.words) if state.words else 0.0
    src = Source(kind="pdf", document=document, page=state.pages[0])
    if po is None:
        msg = f"page(s) {pages} read by OCR (mean word confidence {mean:.2f}); no order found"
        return [Finding(severity=Severity.WARNING, code="ocr_read", message=msg, source=src)]
    po.document_type = OCR_DOCUMENT_TYPE
    conf = field_confidences(po, state)
    weakest = sorted(conf.items(), key=lambda kv: kv[1])[:5]
    shown = ", ".join(f"{k} {v:.2f}" for k, v in weakest)
    out = [Finding(severity=Severity.WARNING, code="ocr_read", source=src,
                   message=f"page(s) {pages} read by OCR in {state.seconds:.1f}s (mean word confidence {mean:.2f}); "
                           f"a person checks every field; weakest: {shown or 'none'}")]  # fmt: skip
    for key, value in sorted(conf.items()):
        if value < state.limits.review_confidence:
            out.append(Finding(severity=Severity.WARNING, code="ocr_low_confidence", source=po.sources.get(key),
                               message=f"{key}: read by OCR with confidence {value:.2f}"))  # fmt: skip
    return out
