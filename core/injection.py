"""Instruction-like text in data: the patterns and the text normalisation shared by every detector.

Documents (``intake.extract.detect_injection``) and alerts/goals (``agents.triage``) both look for
text that addresses the system instead of describing an order or an exception. Attackers dodge
plain English regexes with other languages, zero-width characters, look-alike letters (Cyrillic
``о`` for Latin ``o``), full-width forms and tool-call or chat-role markup, so every scan runs on a
*view* of the text that is NFKD-folded, stripped of format characters and combining marks, case-
folded and (for Latin patterns) homoglyph-folded. Each view keeps a map back to the original
offsets, so a finding still points at the exact characters of the source.

Detection feeds findings and quarantine; safety must never depend on it being complete. This module
is pure text work: no I/O, no state.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "INJECTION_PATTERNS",
    "NON_LATIN_PATTERNS",
    "TextView",
    "find_injections",
    "split_sentences",
    "text_view",
]

# Cyrillic and Greek letters that look like Latin ones (lower case: views are case-folded first).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "һ": "h",
        "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ı": "i",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    }
)  # fmt: skip


@dataclass(frozen=True)
class TextView:
    """Normalised text plus, per character, the offset of the original character it came from."""

    text: str
    offsets: tuple[int, ...] | None
    """``offsets[i]`` is the original index of ``text[i]`` (None: the identity, an ASCII fast path)."""
    length: int
    """Length of the original text (the end offset of a match that runs to the end)."""

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original ``(start, end)`` of the view's ``text[start:end]``."""
        if self.offsets is None:
            return start, end
        s = self.offsets[start] if start < len(self.offsets) else self.length
        e = self.offsets[end - 1] + 1 if 0 < end <= len(self.offsets) else s
        return s, max(s, e)


def text_view(text: str, *, fold_homoglyphs: bool = True) -> TextView:
    """``text`` as detectors see it: compatibility-decomposed, without format characters (zero-width
    spaces, bidi controls, soft hyphens) or combining marks (accents), case-folded and, unless told
    otherwise, with look-alike Cyrillic/Greek letters mapped to Latin."""
    if text.isascii():
        return TextView(text.lower(), None, len(text))
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch) == "Cf":
            continue
        for d in unicodedata.normalize("NFKD", ch):
            if unicodedata.combining(d):
                continue
            folded = d.casefold()
            if fold_homoglyphs:
                folded = folded.translate(_HOMOGLYPHS)
            for f in folded:
                chars.append(f)
                offsets.append(i)
    return TextView("".join(chars), tuple(offsets), len(text))


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


# Written for the folded view: lower case, no accents ("precedentes", "samtliche", "instrucoes").
# fmt: off
INJECTION_PATTERNS: tuple[re.Pattern[str], ...] = _compile((
    # French
    r"\b(?:ignore[zr]?|oublie[zr]?|ne\s+tenez\s+pas\s+compte\s+des?)\b[^.\n]{0,40}?\b(?:instructions?|consignes?|regles?)\b",
    r"\bannul\w*\b[^.\n]{0,25}?\b(?:toutes?|tous)\s+(?:les\s+)?(?:commandes?|ordres?)\b",
    r"\b(?:approuve[zr]?|valide[zr]?)\b[^.\n]{0,30}?\bautomatiquement\b",
    r"\bautomatiquement\s+(?:approuv|valid)\w*",
    r"\bsans\s+(?:l'|la\s+|aucune\s+)?(?:approbation|validation|verification)\b",
    r"\b(?:vous\s+etes|tu\s+es)\s+maintenant\b",
    r"\b(?:fixe[zr]?|mette[zr]?|mets)\s+(?:le\s+)?prix\s+a\s+0",
    # Spanish
    r"\b(?:ignora[dr]?|ignore[ns]?|olvida[dr]?)\b[^.\n]{0,40}?\binstrucciones\b",
    r"\bcancel(?:a|ad|ar|en)\b[^.\n]{0,25}?\b(?:todos|todas)\s+(?:los\s+|las\s+)?(?:pedidos|ordenes)\b",
    r"\baprueba[dr]?\b[^.\n]{0,30}?\bautomaticamente\b",
    r"\bsin\s+(?:la\s+)?(?:aprobacion|revision\s+humana)\b",
    r"\bahora\s+eres\b",
    r"\bmueve\s+todos\s+los\s+pedidos\b",
    # German
    r"\b(?:ignorier\w*|vergiss\w*|missachte\w*)\b[^.\n]{0,40}?\b(?:anweisungen|instruktionen|regeln|vorgaben)\b",
    r"\bstorn\w*\b[^.\n]{0,30}?\b(?:alle|samtliche)\s+(?:\w+\s+)?(?:bestellungen|auftrage)\b",
    r"\b(?:alle|samtliche)\s+(?:bestellungen|auftrage)\s+storn\w*",
    r"\bautomatisch\s+(?:genehmig|freigeb)\w*|\bgenehmig\w*\s+automatisch\b",
    r"\bohne\s+(?:genehmigung|freigabe)\b",
    r"\bdu\s+bist\s+(?:jetzt|nun)\b",
    # Portuguese
    r"\b(?:ignore|ignora|esqueca)\b[^.\n]{0,40}?\binstrucoes\b",
    r"\bcancel[ae]\b[^.\n]{0,25}?\b(?:todos|todas)\s+(?:os\s+|as\s+)?(?:pedidos|encomendas|ordens)\b",
    r"\baprov[ae]\b[^.\n]{0,30}?\bautomaticamente\b",
    r"\bsem\s+(?:a\s+)?aprovacao\b",
    r"\bvoce\s+agora\s+e\b",
    # Italian
    r"\b(?:ignora|ignorate|dimentica)\b[^.\n]{0,40}?\bistruzioni\b",
    r"\bannulla\w*\b[^.\n]{0,25}?\btutti\s+(?:gli\s+)?ordini\b",
    r"\bapprova\w*\b[^.\n]{0,30}?\bautomaticamente\b",
    r"\bsenza\s+(?:l'|la\s+)?approvazione\b",
    r"\bora\s+sei\b",
    # encoded payloads handed over to be obeyed
    r"\b(?:decode|decrypt|unscramble)\b[^.\n]{0,40}?\b(?:follow|obey|execute|do\s+what)\b",
    r"\binstructions?\s*\((?:rot13|base64|encoded)\)",
    # JSON / tool-call look-alikes
    r"\"(?:tool|tool_name|tool_calls?|function_call|function|action)\"\s*:",
    r"<\s*/?\s*(?:tool_call|tool_use|tool_result|function_calls?|invoke)\b[^>]{0,80}>",
    r"\b(?:cancel|reroute|release|approve|delete|close|hold|update|set)_(?:all_)?"
    r"(?:orders?|holds?|nodes?|approvals?|prices?|records?)\b",
    # chat-role and prompt-format markers
    r"(?:^|[\n.!?;>\]}\"'])[ \t]*(?:system|assistant|developer)[ \t]*:",
    r"#{2,}\s*(?:new\s+)?(?:instructions?|system)\b",
    r"\[/?\s*(?:inst|sys|system)\s*\]",
    r"<<\s*/?\s*sys\s*>>",
    r"<\|\s*(?:im_start|im_end|system|assistant|endoftext)\s*\|>",
    r"<\s*/?\s*(?:system|assistant|instructions?)\s*>",
))

# Scripts the homoglyph fold would garble: matched on the view without that fold.
NON_LATIN_PATTERNS: tuple[re.Pattern[str], ...] = _compile((
    r"игнориру\w*[^.\n]{0,40}?инструкц",
    r"забуд\w*[^.\n]{0,40}?инструкц",
    r"отмен\w*\s+(?:все|всех)\s+заказ",
    r"忽略.{0,10}(?:指令|指示|说明|规则)",
    r"取消所有.{0,4}订单",
))
# fmt: on


def find_injections(text: str, extra: Sequence[re.Pattern[str]] = ()) -> list[tuple[int, int]]:
    """Spans (original offsets, sorted, one per start) of instruction-like text in ``text``: the
    shared patterns plus ``extra`` (a caller's own list, written for the folded view)."""
    if not text:
        return []
    spans: dict[int, int] = {}
    folded = text_view(text)
    for rx in (*extra, *INJECTION_PATTERNS):
        for m in rx.finditer(folded.text):
            s, e = folded.span(m.start(), m.end())
            spans.setdefault(s, e)
    if not text.isascii():
        plain = text_view(text, fold_homoglyphs=False)
        for rx in NON_LATIN_PATTERNS:
            for m in rx.finditer(plain.text):
                s, e = plain.span(m.start(), m.end())
                spans.setdefault(s, e)
    return sorted(spans.items())


_SENTENCE_END = re.compile(r"(?<=[.!?;。！？])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """``text`` cut after sentence ends and at line breaks (empty pieces dropped)."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]
