"""Instruction-like text in data: the patterns and the text normalisation shared by every detector.

Documents (``intake.extract.detect_injection``) and alerts/goals (``agents.triage``) both look for
text that addresses the system instead of describing an order or an exception. Attackers dodge
plain English regexes with other languages, zero-width characters, look-alike letters (Cyrillic
``о`` for Latin ``o``), full-width forms and tool-call or chat-role markup, so every scan runs on a
*view* of the text that is NFKD-folded, stripped of format characters and combining marks, case-
folded and (for Latin patterns) homoglyph-folded. Each view keeps a map back to the original
offsets, so a finding still points at the exact characters of the source.

Before matching, :func:`find_injections` also reads the text the way an attacker hides it: runs of
base64, quoted-printable and percent-encoding are decoded (a run that decodes to readable prose is a
finding by itself: a document has no business carrying sentences in an encoding), and the whole
text is scanned again rot13-rotated, leetspeak-folded (``1GN0R3`` -> ``ignore``), reversed and
with letter spacing collapsed (``i g n o r e``). Patterns cover English and 14 other languages
(es, fr, de, it, pt, nl, pl, sv, tr, ru, ja, zh, ko) plus notes addressed to an AI or an approver,
approval claims ("APPROVED BY ...") and jailbreak role-play: none of these belongs in an order, an
alert or a goal.

Detection feeds findings and quarantine; safety must never depend on it being complete. This module
is pure text work: no I/O, no state.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "INJECTION_PATTERNS",
    "NON_LATIN_PATTERNS",
    "TextView",
    "decoded_runs",
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
        if "\U0001f1e6" <= ch <= "\U0001f1ff":  # regional indicator symbols spell letters ("🇭🇴🇼" = "how")
            chars.append(chr(ord("a") + ord(ch) - 0x1F1E6))
            offsets.append(i)
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


def _fold_literal(pattern: str) -> str:
    """A non-Latin pattern folded as the view is (NFKD, no combining marks, case-folded), so that it
    can be written naturally: Hangul syllables decompose, Japanese voiced kana lose their marks."""
    return "".join(
        d.casefold() for ch in pattern for d in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(d)
    )


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
    # "<\s*/?\s*": the two space runs atomic, since trading spaces between them never helps; "<" and 20,000
    # spaces took 29 s (every split tried). Atomic groups, not "*+": the letter-spaced reading drops "\s*".
    r"<(?>\s*)/?(?>\s*)(?:tool_call|tool_use|tool_result|function_calls?|invoke)\b[^>]{0,80}>",
    r"\b(?:cancel|reroute|release|approve|delete|close|hold|update|set)_(?:all_)?"
    r"(?:orders?|holds?|nodes?|approvals?|prices?|records?)\b",
    # chat-role and prompt-format markers
    r"(?:^|[\n.!?;>\]}\"'])[ \t]*(?:system|assistant|developer)[ \t]*:",
    r"(?<!#)#{2,}+\s*+(?:new\s++)?(?:instructions?|system)\b",  # from a run's first '#' only: linear
    r"\[/?\s*(?:inst|sys|system)\s*\]",
    r"<<(?>\s*)/?(?>\s*)sys\s*>>",
    r"<\|\s*(?:im_start|im_end|system|assistant|endoftext)\s*\|>",
    r"<(?>\s*)/?(?>\s*)(?:system|assistant|instructions?)\s*>",
    r"\"role\"\s*:\s*\"(?:system|assistant|developer)\"",
    r"\"(?:approved|approval|bypass\w*|skip\w*|auto_?approve\w*|override)\"\s*:\s*(?:true|\"(?:yes|granted|true)\")",
    # English: setting aside the rules, approvals without a person, prices and quantities dictated
    r"\b(?:ignore|disregard|forget|bypass|pay\s+no\s+attention\s+to|never\s+mind|set\s+aside)\b[^.\n]{0,40}?"
    r"\b(?:instructions?|rules?|guidance|guidelines|directions|polic(?:y|ies)|prompts?|restrictions|limits|"
    r"constraints|programming|filters?|safeguards|guardrails?)\b",
    r"\b(?:without|no|skip(?:ping)?|bypass(?:ing)?|avoid(?:ing)?)\s+(?:the\s+|any\s+|a\s+|further\s+|human\s+|"
    r"manual\s+)*(?:approvals?|approval\s+step|review(?:er)?s?|review\s+queue|sign-?off|verification|human)\b",
    r"\b(?:do\s+not|don'?t|never)\s+(?:ask|wait|check)\b[^.\n]{0,30}?\b(?:approval|review|permission|person|human)",
    r"\bauto-?\s?(?:approve|approval|create|release|confirm)\w*",
    r"\b(?:approve|release|accept)\b[^.\n]{0,30}?\b(?:yourself|immediately|automatically|right\s+away)\b",
    r"\b(?:set|change|make|put|update|reduce)\b[^.\n]{0,40}?\b(?:prices?|costs?|amounts?|totals?)\b[^.\n]{0,25}?"
    r"(?:\bto|\bat|=)\s*(?:\$\s*)?0(?:[.,]0+)?(?![\d.,]*\d)",
    r"\b(?:set|change|make|update|raise)\b[^.\n]{0,30}?\bquantit\w*\b[^.\n]{0,25}?\bto\s+\d{4,}",
    r"\bcancel\s+(?:all|every|each|any\s+and\s+all)\b[^.\n]{0,30}?\borders?\b",
    r"\brelease\s+(?:all|every)\b[^.\n]{0,20}?\b(?:holds?|held|orders?)\b",
    r"\bwithout\s+(?:telling|informing|notifying|alerting)\b",
    r"\byou\s+are\s+(?:now|no\s+longer)\b",
    r"\b(?:administrator|admin|developer|god|debug|maintenance|unrestricted|jailbreak|dan)[\s_\\]+mode\b",
    r"\bsystem\s+(?:override|notice|instructions?|command|message|prompt)\b|\bnew\s+instructions?\b",
    r"\boverride\s+(?:the\s+|any\s+)?(?:credit\s+hold|holds?|polic\w+|limits?|approvals?|review|guard\w*|rules?)\b",
    # role-play and jailbreak talk: nobody writes this to a supplier
    r"\b(?:act|acting|behave)\s+as\b|\bpretend\s+(?:to\s+be|you\s+are|that)\b|\bplay\s+a\s+game\b",
    r"\bfrom\s+now\s+on\b[^.\n]{0,30}?\byou\b|\bdo\s+anything\s+now\b|\bstay\s+in\s+character\b",
    r"\b(?:no|without|free\s+of)\s+(?:any\s+)?(?:restrictions|filters|limitations|ethical|moral|content\s+polic)",
    r"\bimmerse\s+yourself\b|\brole-?play\w*\b|\bjailbr(?:oken|eak\w*)\b|\b(?:un)?(?:filtered|censored)\b",
    r"\bin\s+your\s+(?:answers?|responses?|replies|outputs?)\b|\brespond\s+(?:as|only|in\s+character)\b|\bact\s+like\b",
    r"\bi\s+will\s+give\s+you\b|\bfictional\s+(?:story|world|scenario|character)\b|"
    r"\b(?:ethical|legal|moral)\s+(?:implications|guidelines|constraints|boundaries)\b",
    r"\bchat\s?gpt\b|\bopenai\b|\bcontent\s+polic(?:y|ies)\b|\blanguage\s+model\b|\bas\s+an?\s+ai\b",
    # text written for a chatbot: prompt-template placeholders, instructions about its replies, AI
    # personas, requests for a story or a poem, program code
    r"[\[(<{]\s*(?:put\s+|insert\s+|enter\s+|first\s+|your\s+|the\s+)*(?:prompts?|questions?|topics?|inputs?)"
    r"(?:\s+here)?\s*[\])>}]",
    r"\b(?:start|begin|end|prefix|format)\s+(?:your|each|every|all)\s+(?:reply|replies|responses?|answers?|outputs?)\b",
    r"\b(?:for|in)\s+(?:each|every)\s+(?:reply|response|answer|output)\b|\byour\s+answer\s+to\b",
    r"\b(?:limit|scope\s+of)\s+(?:the\s+|your\s+)?(?:output|answer|response|reply)\b|\boutput\s+to\s*<?\s*\d+\s*tokens\b",
    r"\b\w+gpt\b|\bchat\s?bots?\b|\bai\s+(?:learning\s+|language\s+)?(?:models?|assistants?|chatbots?|bots?)\b",
    r"\bfictional\s+ai\b|\bpersona\b|\bnever\s+refuse\b|\bforget\s+everything\b|\btransform\s+into\b",
    r"\bplay\s+(?:\d+|two|three|both|the)\s+(?:characters?|roles?)\b|\bsimulat\w*\s+(?:a\s+)?conversation\b",
    r"\bwrite\s+(?:me\s+)?(?:a|an)\s+(?:\w+\s+){0,2}(?:story|poem|essay|song|script|guide|article|speech|tale|"
    r"novel|joke|limerick|rap|fanfic\w*|screenplay)\b|\bwrite\s+(?:a\s+)?fictional\b",
    r"(?:^|\n)\s*(?:import\s+[a-z_][\w.]*|from\s+[a-z_][\w.]*\s+import)\b|\bdef\s+\w+\s*\(|#include\s*<|<script\b",
    # notes addressed to an AI, an assistant, a bot or an approver
    r"\b(?:note|message|instructions?|p\.?\s?s\.?|reminder)\s+(?:to|for)\s+(?:the\s+|any\s+|whatever\s+)?"
    r"(?:ai|a\.i\.|assistant|bot|chatbot|llm|model|agent|automated\s+\w+|approval\s+bot|approver|language\s+model)\b",
    # "\s*,?\s+" as the two spacings it can be, each taken whole: "Hello" and 40,000 spaces was quadratic
    r"\b(?:dear|hey|hi|hello|attention)(?:\s*+,\s++|\s++)(?:ai|assistant|bot|chatbot|gpt|llm|model|agent|approver)\b",
    r"\b(?:whoever|whatever)\b[^.\n]{0,20}?\b(?:reviews|reads|processes)\s+this\b",
    r"\b(?:ai|llm|language\s+model|assistant|agent|bot)\s+(?:reading|processing|reviewing|parsing)\s+this\b",
    r"\[\s*for\s+the\s+(?:automated|ai|system|assistant|bot)\b",
    # approval claims: a document cannot grant an approval
    r"\bpre-?(?:approved|authori[sz]ed)\b|\bapproved[\s-]+by\b|\bapprov(?:al|er)(?:[\s-]+status)?\s*[:=]\s*\w",
    r"\bauthori[sz]ed\s+for\s+auto\w*|\b(?:reviewed\s+and\s+approved|has\s+been\s+approved)\b",
    r"\bmark\b[^.\n]{0,40}?\bas\s+(?:approved|authori[sz]ed|reviewed)\b|\b(?:has|have)\s+already\s+(?:been\s+)?approved\b",
    r"\b(?:freigegeben|genehmigt)\s+(?:durch|von)\b|\bapprouve\s+par\b|\baprobado\s+por\b|\bgoedgekeurd\s+door\b",
    # more Spanish, French, German, Italian, Portuguese
    r"\bsin\s+(?:la\s+)?(?:revision|verificacion|control|aprobacion)\b|\bsin\s+(?:pedir|solicitar)\b",
    r"\b(?:pon|poner|ponga|fija|establece)\b[^.\n]{0,30}?\bprecio\b|\bolvida\b[^.\n]{0,20}?\breglas\b",
    r"\b(?:fixe[zr]?|mette[zr]?|mets)\b[^.\n]{0,30}?\bprix\b[^.\n]{0,30}?\ba\s+0\b|\bsans\s+demander\b",
    r"\bmueve\b[^.\n]{0,20}?\btodos\s+los\s+pedidos\b|\bdeplace[zr]?\b[^.\n]{0,20}?\btoutes\s+les\s+commandes\b",
    r"\bohne\s+(?:eine\s+|die\s+)?(?:genehmigung|freigabe|prufung|kontrolle|uberprufung)\b",
    r"\bsetze\w*\b[^.\n]{0,30}?\bpreis\w*\b[^.\n]{0,30}?\bauf\s+0\b|\bverschieb\w*\b[^.\n]{0,20}?\balle\s+bestellungen\b",
    r"\bsenza\s+(?:l'|la\s+)?(?:approvazione|revisione|verifica|controllo)\b|\bsenza\s+chiedere\b",
    r"\bdimentica\b[^.\n]{0,20}?\bregole\b|\bimposta\w*\b[^.\n]{0,40}?\bprezz|\bsposta\w*\b[^.\n]{0,20}?\btutti\s+gli\s+ordini\b",
    r"\bsem\s+(?:a\s+)?(?:aprovacao|revisao|verificacao)\b|\bsem\s+pedir\b|\besqueca\b[^.\n]{0,20}?\bregras\b",
    r"\bdefin\w*\b[^.\n]{0,30}?\bpreco\b|\bmova\b[^.\n]{0,20}?\btodos\s+os\s+pedidos\b",
    # Dutch
    r"\b(?:negeer|negeert|vergeet)\b[^.\n]{0,40}?\b(?:instructies|regels|opdrachten|aanwijzingen)\b",
    r"\bzonder\s+(?:controle|goedkeuring|beoordeling|verificatie|toestemming)\b|\bkeur\b[^.\n]{0,30}?\bgoed\b[^.\n]{0,20}?\bzonder\b",
    r"\bzet\b[^.\n]{0,30}?\bprijs\b[^.\n]{0,30}?\bop\s+0\b|\bannuleer\w*\b[^.\n]{0,20}?\balle\b[^.\n]{0,20}?\bbestellingen\b",
    r"\bverplaats\w*\b[^.\n]{0,20}?\balle\s+bestellingen\b",
    # Polish
    r"\b(?:zignoruj|ignoruj|zapomnij)\b[^.\n]{0,40}?\b(?:instrukcje|polecenia|zasad\w*|regul\w*)\b",
    r"\bbez\s+(?:weryfikacji|zatwierdzenia|kontroli|sprawdzenia|prosby\s+o\s+zatwierdzenie|akceptacji)\b",
    r"\bustaw\b[^.\n]{0,30}?\bcen\w*\b[^.\n]{0,30}?\bna\s+0\b|\banuluj\b[^.\n]{0,20}?\bwszystkie\b[^.\n]{0,20}?\bzamowienia\b",
    r"\bprzenies\b[^.\n]{0,20}?\bwszystkie\s+zamowienia\b",
    # Turkish
    r"\btalimat\w*\b[^.\n]{0,20}?\b(?:yok\s+say|gormezden\s+gel|unut)\w*|\b(?:incelemeden|onay\s+istemeden|onaysiz)\b",
    r"\bkurallari\s+unut\b|\bfiyat\w*\s+0\s+yap\b|\btum\b[^.\n]{0,30}?\bsiparis\w*\b[^.\n]{0,30}?\b(?:iptal\s+et|tasi)\b",
    # Swedish
    r"\b(?:ignorera|glom|strunta\s+i)\b[^.\n]{0,40}?\b(?:instruktioner|regler\w*|anvisningar)\b",
    r"\butan\s+(?:granskning|godkannande|kontroll|att\s+be\s+om\s+godkannande)\b",
    r"\bsatt\b[^.\n]{0,30}?\bpris\w*\b[^.\n]{0,30}?\btill\s+0\b|\b(?:avbryt|flytta)\b[^.\n]{0,25}?\balla\b[^.\n]{0,20}?\bordrar\b",
))

# Scripts the homoglyph fold would garble: matched on the view without that fold.
NON_LATIN_PATTERNS: tuple[re.Pattern[str], ...] = _compile(_fold_literal(p) for p in (
    # Russian
    r"игнорируй|игнорировать|забудь\w*\s+(?:все\s+)?(?:правила|инструкции)|игнориру\w*[^.\n]{0,40}?инструкц",
    r"забуд\w*[^.\n]{0,40}?инструкц|отмен\w*\s+(?:все|всех)\s+(?:\w+\s+)*?заказ",
    r"без\s+(?:проверки|одобрения|согласования|подтверждения|разрешения)|не\s+запрашивая",
    r"установи\w*\s+цен\w*|цен\w*[^.\n]{0,30}?равн\w*\s+0|перенеси\w*[^.\n]{0,20}?все\s+заказы|одобри\w*\s+этот",
    # Chinese
    r"忽略.{0,10}(?:指令|指示|说明|规则)|取消.{0,10}所有.{0,10}订单|取消所有.{0,4}订单",
    r"无需审核|无须审核|不要请求批准|不需要审批|跳过审核|直接批准|忘记规则|设为0|订单也转移",
    # Japanese
    r"無視.{0,10}(?:指示|命令|ルール)|(?:指示|命令|ルール).{0,6}無視|確認なしで|承認なしで|承認を求めない",
    r"単価を0|価格を0|ルールを忘れ|すべてキャンセル|注文もすべて移動",
    # Korean
    r"무시하고|무시하세요|지시를\s*무시|검토\s*없이|승인\s*없이|승인\s*요청\s*없이|규칙을\s*잊",
    r"단가를\s*0|가격을\s*0|주문.{0,10}취소하세요|주문도\s*옮기",
))
# fmt: on


def find_injections(text: str, extra: Sequence[re.Pattern[str]] = ()) -> list[tuple[int, int]]:
    """Spans (original offsets, sorted, one per start) of instruction-like text in ``text``: the
    shared patterns plus ``extra`` (a caller's own list, written for the folded view), matched on
    the text as written and as an attacker hides it (see the module docstring)."""
    if not text:
        return []
    spans: dict[int, int] = {}
    for s, e in _scan(text, extra, derived=True):
        spans.setdefault(s, e)
    for s, e, decoded in decoded_runs(text):
        if _scan(decoded, extra, derived=True) or _is_prose(decoded):
            spans.setdefault(s, e)
    return sorted(spans.items())


# What printed purchase orders say about approvals that is not a claim of one: a prohibition ("do
# not back-order without approval") and an empty signature block ("Prepared By  Approved By  Vendor
# Acknowledgement", "Approved by: ________"). Blanked (same length, offsets kept) before matching;
# an approval *claim* ("Approved by: Dana, VP Finance", "pre-approved") still matches.
_FORM_PHRASES = re.compile(
    r"\b(?:do\s+not|don'?t|never|not\s+to|no|nor)\s+(?:[a-z'-]+\s+){0,4}?without\s+(?:(?:our|the|any|prior|"
    r"advance|written|express|explicit|buyer'?s?|purchasing'?s?|customer'?s?)\s+)*(?:approval|authori[sz]ation|"
    r"consent)\b"
    r"|\b(?:approved|authori[sz]ed|reviewed|prepared|checked|signed)\s+by\b[ \t]*:?[ \t]*"
    r"(?=$|\n|_{2,}|\.{3,}|(?:prepared|approved|authori[sz]ed|reviewed|checked|signed|vendor|supplier|date|"
    r"signature|title|name|acknowledg\w*|accepted|received)\b)",
    re.MULTILINE,
)


def _blank_form_phrases(view: str) -> str:
    return _FORM_PHRASES.sub(lambda m: " " * len(m.group(0)), view) if "approv" in view or "autho" in view else view


_Reading = tuple[str, Callable[[int, int], tuple[int, int]]]


def _derived_readings(folded: TextView) -> list[_Reading]:
    """``folded`` read as rot13, as leetspeak, reversed and with its letter spacing taken out, each
    with the function that maps a span in the reading back to the original text."""
    n = len(folded.text)
    readings: list[_Reading] = [(codecs.encode(folded.text, "rot13"), folded.span)]
    for table in _LEET_TABLES:
        leet = _leet_fold(folded.text, table)
        if leet != folded.text:
            readings.append((leet, folded.span))

    def from_reversed(s: int, e: int) -> tuple[int, int]:
        return folded.span(n - e, n - s)

    readings.append((folded.text[::-1], from_reversed))
    despaced, index = _despace(folded.text)
    if index is not None:
        ix = index

        def from_despaced(s: int, e: int) -> tuple[int, int]:
            return folded.span(ix[s], ix[max(s, e - 1)] + 1)

        readings.append((despaced, from_despaced))
    return readings


def _lost_letter_spans(folded: TextView, latin: Sequence[re.Pattern[str]]) -> list[tuple[int, int]]:
    """A writer that could not encode a letter printed "?" (Polish "przenie?" for "przenieś", Turkish
    "ta??" for "taşı"): every such "?" is read as a wildcard letter, matched by the patterns'
    lost-letter-tolerant variants, so any number of them in a word reads right."""
    if not _LOST_LETTER.search(folded.text):
        return []
    lost = _LOST_LETTER.sub(lambda m: _LOST * len(m.group(0)), folded.text)
    return [folded.span(m.start(), m.end()) for rx in _tolerant_patterns(latin) for m in _finditer(rx, lost)]


def _non_latin_spans(text: str) -> list[tuple[int, int]]:
    """Matches of the patterns written in other scripts, on a view that keeps those scripts."""
    plain = text_view(text, fold_homoglyphs=False)
    return [plain.span(m.start(), m.end()) for rx in NON_LATIN_PATTERNS for m in _finditer_word_led(rx, plain.text)]


# --- patterns whose alternatives start with a word stem ("цен\w*...") ----------------------------------

_STEM_LED = re.compile(r"([^\W\d_]+)\\w\*")
"""An alternative's source that starts with a stem of letters and ``\\w*`` (``игнориру\\w*...``)."""
_WORDS_TO = re.compile(r"(([^\W\d_]+)\\w\*\\s\+\(\?:[^\W\d_]+(?:\|[^\W\d_]+)*\)\\s\+)\(\?:\\w\+\\s\+\)\*\?[^\W\d_]+")
"""``stem\\w*\\s+(?:word|word)\\s+(?:\\w+\\s+)*?word`` (``отмен\\w*\\s+(?:все|всех)\\s+(?:\\w+\\s+)*?заказ``):
the first part, up to the words, has one end where it matches (after the space run), and from there
the words are tried one by one up to a character that is neither a letter nor a space."""
_WORD_RUN = re.compile(r"\w*")
_WORDS_RUN = re.compile(r"[\w\s]*")


@dataclass(frozen=True)
class _Alternative:
    """One top-level alternative of a pattern, compiled alone."""

    rx: re.Pattern[str]
    stem: re.Pattern[str] | None
    size: int
    lead: re.Pattern[str] | None
    """For a :data:`_WORDS_TO` alternative, its part up to the words."""


_STEMS: dict[str, list[_Alternative]] = {}


def _stem_alternatives(rx: re.Pattern[str]) -> list[_Alternative]:
    """``rx``'s top-level alternatives compiled alone, each with its leading stem (a pattern and its
    length) when it starts with one. Compiled once per pattern."""
    if rx.pattern not in _STEMS:
        out: list[_Alternative] = []
        for alt in _alternatives(rx.pattern):
            m = _STEM_LED.match(alt)
            words = _WORDS_TO.fullmatch(alt)
            out.append(_Alternative(
                re.compile(alt, rx.flags),
                re.compile(re.escape(m.group(1)), rx.flags) if m else None,
                len(m.group(1)) if m else 0,
                re.compile(words.group(1), rx.flags) if words else None,
            ))  # fmt: skip
        _STEMS[rx.pattern] = out
    return _STEMS[rx.pattern]


def _search_stem_led(alt: _Alternative, text: str, pos: int, dead: list[int]) -> re.Match[str] | None:
    """``alt.rx.search(text, pos)`` for an alternative ``stem\\w*rest``, trying each stem once per word.

    From a stem the pattern reads to the end of the word and back, so a word of many stems
    ("ценаценаценa...") was read once per stem (8,000 characters took 3.5 s, quadratic). A later stem
    in the same word reaches only places the earlier one reached, and what ``rest`` matches at a
    place does not depend on where the match started: after a try that failed, the stems up to the
    end of its word fail too. ``dead`` (kept between calls): that try's start and its word's end.

    A :data:`_WORDS_TO` alternative read the rest of the words from every stem ("отмен все отмен
    все ...", quadratic): after a try whose first part matched and whose words did not, a later
    stem whose first part ends in the same run of letters and spaces fails too (it is tried on fewer
    of the same words). ``dead[2:4]``: where those words start and their run's end."""
    assert alt.stem is not None
    p = pos
    while (found := alt.stem.search(text, p)) is not None:
        s = found.start()
        if dead[0] <= s and s + alt.size <= dead[1]:
            p = dead[1] - alt.size + 1
            continue
        lead = alt.lead.match(text, s) if alt.lead is not None else None
        if alt.lead is not None and (lead is None or dead[2] <= lead.end() <= dead[3]):
            hit = None
        else:
            hit = alt.rx.match(text, s)
            if hit is not None:
                return hit
            if lead is not None:
                words = _WORDS_RUN.match(text, lead.end())
                dead[2], dead[3] = lead.end(), words.end() if words else lead.end()
        word = _WORD_RUN.match(text, s + alt.size)
        dead[0], dead[1] = s, word.end() if word else s + alt.size
        p = s + 1
    return None


def _finditer_word_led(rx: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``rx.finditer(text)`` (the same spans), in linear time when alternatives start with a stem.

    Each alternative is searched on its own (a stem-led one with :func:`_search_stem_led`) and the
    streams merged as the engine would: the leftmost match, the earlier alternative first at the same
    place, the next search from its end."""
    alts = _stem_alternatives(rx)
    if all(alt.stem is None for alt in alts):
        yield from rx.finditer(text)
        return
    found: list[re.Match[str] | None] = [None] * len(alts)
    done = [False] * len(alts)
    dead = [[-1, -1, -1, -1] for _ in alts]
    pos = 0
    while pos <= len(text):
        for i, alt in enumerate(alts):
            prev = found[i]
            if not done[i] and (prev is None or prev.start() < pos):
                nxt = alt.rx.search(text, pos) if alt.stem is None else _search_stem_led(alt, text, pos, dead[i])
                found[i], done[i] = nxt, nxt is None
        best = min(((m.start(), i) for i, m in enumerate(found) if m is not None and not done[i]), default=None)
        if best is None:
            return
        m = found[best[1]]
        assert m is not None
        yield m
        pos = max(m.end(), m.start() + 1)


def _scan(text: str, extra: Sequence[re.Pattern[str]], *, derived: bool) -> list[tuple[int, int]]:
    """Spans of pattern matches in ``text``'s folded view and, with ``derived``, in its rot13,
    leetspeak, reversed, de-spaced, lost-letter and letter-spaced readings (spans mapped back to
    ``text``)."""
    out: list[tuple[int, int]] = []
    folded = text_view(text)
    folded = TextView(_blank_form_phrases(folded.text), folded.offsets, folded.length)
    latin = (*extra, *INJECTION_PATTERNS)
    readings: list[_Reading] = [(folded.text, folded.span)]
    if derived:
        readings += _derived_readings(folded)
    for k, (reading, to_original) in enumerate(readings):
        # A derived reading of ordinary text is gibberish: skip the full pattern set unless one of
        # the words the patterns are built on shows up (keeps large documents linear and cheap).
        if k and not _TRIGGER.search(reading):
            continue
        out += [to_original(m.start(), m.end()) for rx in latin for m in _finditer(rx, reading)]
    if derived:
        out += _lost_letter_spans(folded, latin)
        out += _letter_spaced(folded)
    if not text.isascii():
        out += _non_latin_spans(text)
    return out


# --- patterns that start a line ---------------------------------------------------------------------

_LINE_LED = "(?:^|\\n)\\s*"
"""How a pattern that must start a line begins ("\\nSYSTEM: ..."); a word always follows."""
_SPLIT: dict[str, tuple[re.Pattern[str], re.Pattern[str] | None] | None] = {}
_NON_SPACE = re.compile(r"\S")


def _alternatives(source: str) -> list[str]:
    """The top-level alternatives of a pattern's source (``a|(b|c)`` -> ``a``, ``(b|c)``)."""
    out: list[str] = []
    depth, start, i, in_class = 0, 0, 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1 if source[i + 1 : i + 2] != "]" else 2  # "[]...]": the first "]" is a member
            continue
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "|" and depth == 0:
            out.append(source[start:i])
            start = i + 1
        i += 1
    return [*out, source[start:]]


def _split_line_led(rx: re.Pattern[str]) -> tuple[re.Pattern[str], re.Pattern[str] | None] | None:
    """``rx`` as (its leading alternatives that start a line, the rest or None); None when it does
    not start with such an alternative. Compiled once per pattern."""
    if rx.pattern not in _SPLIT:
        alts = _alternatives(rx.pattern)
        k = next((i for i, a in enumerate(alts) if not a.startswith(_LINE_LED)), len(alts))
        _SPLIT[rx.pattern] = (
            (
                re.compile("|".join(alts[:k]), rx.flags),
                re.compile("|".join(alts[k:]), rx.flags) if k < len(alts) else None,
            )
            if k
            else None
        )
    return _SPLIT[rx.pattern]


def _finditer(rx: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``rx.finditer(text)``, in linear time for a pattern that starts a line ("(?:^|\\n)\\s*word").

    Such a pattern is tried at every line break, and from each it reads the whole run of spaces and
    line breaks that follows to the word: a run of 10,000 line breaks was 10,000 reads of itself
    (seconds, quadratic). Every break inside a run reaches the same word the same way, so after a try
    that failed the breaks up to the end of its run are not tried again. The pattern's other
    alternatives (``|def name(``) are searched as before and the two streams merged as the engine
    would: the leftmost match, the line-start alternatives first at the same place."""
    split = _split_line_led(rx)
    if split is None:
        yield from rx.finditer(text)
        return
    led, rest = split
    n, pos, skip_to = len(text), 0, -1
    line_match: re.Match[str] | None = None
    other: re.Match[str] | None = None
    line_done = other_done = False
    while pos <= n:
        if not line_done and (line_match is None or line_match.start() < pos):
            line_match, skip_to = _next_line_match(led, text, pos, skip_to)
            line_done = line_match is None
        if rest is not None and not other_done and (other is None or other.start() < pos):
            other = rest.search(text, pos)
            other_done = other is None
        m = min((x for x in (line_match, other) if x is not None), key=lambda x: (x.start(), x is not line_match),
                default=None)  # fmt: skip
        if m is None:
            return
        yield m
        pos = max(m.end(), m.start() + 1)


def _next_line_match(led: re.Pattern[str], text: str, pos: int, skip_to: int) -> tuple[re.Match[str] | None, int]:
    """The first match of ``led`` at or after ``pos`` (at the text's start or a line break), and how
    far the runs of spaces already known to lead nowhere reach."""
    p = pos if pos == 0 else text.find("\n", pos)
    while p >= 0:
        if p >= skip_to:
            m = led.match(text, p)
            if m is not None:
                return m, skip_to
            nxt = _NON_SPACE.search(text, p + 1 if text[p : p + 1] == "\n" else p)
            skip_to = nxt.start() if nxt is not None else len(text) + 1
        p = text.find("\n", p + 1)
    return None, skip_to


# --- hidden readings ----------------------------------------------------------------------------------

# Only asked whether one of these words occurs: "\wgpt" occurs exactly where "\w+gpt" does, and the
# latter was tried from every letter of a long word (20,000 digits: seconds per reading, quadratic).
_TRIGGER = re.compile(
    r"ignor|instruct|approv|system|assistant|previous|prior|price|prix|preis|prezz|preco|precio|cancel|annul|storn|"
    r"rule|regel|review|overrid|admin|bypass|skip|disregard|forget|vergi|oubli|olvid|auto|act\s|pretend|game|now|"
    r"gpt|openai|model|dear|note|mode|jailbr|role|charact|persona|filter|restrict|quantit|release|mark|reroute|"
    r"without|sans|sin\s|ohne|senza|sem\s|zonder|bez\s|utan|tool|role|inst|sys|im_|polic|guid|tell|limit|dan\b|"
    r"whoever|whatever|respond|answer|ethic|fiction|give\s+you|mueve|deplace|verschieb|sposta|mova|verplaats|"
    r"przenies|flytta|tasi|negeer|zignoruj|ignorera|talimat|kural|fiyat|satt|ustaw|zet\s|setze|fixe|mets|pon\s|"
    r"imposta|defin|keur|aprueb|aprov|approuv|genehmig|freigeg|goedgek|zatwierd|godkann|onay|"
    r"persona|prompt|story|poem|write|import|chat|simulat|transform|everything|refuse|reply|output|\wgpt|"
    r"\"|<|\[|#|\|",
    re.IGNORECASE,
)

_LEET_BASE = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "9": "g", "8": "b",
              "|": "l", "+": "t", "(": "c"}  # fmt: skip
_LEET_TABLES = (str.maketrans({**_LEET_BASE, "1": "i"}), str.maketrans({**_LEET_BASE, "1": "l"}))
# "(?<!\S)": a token is tried from the start of its run of non-spaces only; a suffix of a run that
# failed holds no letter or leet sign either, so trying each of its positions (as before) only made a
# 10,000-dash run cost seconds.
_LEET_TOKEN = re.compile(r"(?<!\S)(?:[^\s]*[a-z][^\s]*|[^\s]*[013457@$!98|][^\s]*)")


def _leet_fold(view: str, table: dict[int, str]) -> str:
    """``view`` with look-alike digits and symbols read as letters, in tokens that mix them with
    letters or are all leet (``1gn0r3``, ``1n57ruc710n5``); same length, so offsets carry over."""

    def fold(m: re.Match[str]) -> str:
        tok = m.group(0)
        letters = sum(ch.isalpha() for ch in tok)
        leet = sum(ch in "013457@$!98|" for ch in tok)
        if leet == 0 or (letters == 0 and leet < 4):
            return tok
        return tok.translate(table)

    return _LEET_TOKEN.sub(fold, view)


_SPACED_RUN = re.compile(r"(?<!\w)(?:\w[ .\-_*\u00b7]){2,}\w(?!\w)")


_LOST_LETTER = re.compile(r"(?<=[^\W\d_])\?{1,3}(?=[^\W\d_]|[\s.,;:!)]|$)")
# A letter (so ``\w`` and ``\b`` treat it as one) that a folded view never holds: the lost letter.
_LOST = "\u01c2"
_TOLERANT: dict[str, re.Pattern[str] | None] = {}
_ESCAPE_LEN = {"x": 4, "u": 6, "U": 10}
_GROUP_OPEN = re.compile(r"\(\?(?:P<\w+>|P=\w+\)|[aiLmsux-]+[:)]|<[=!]|[:=!#>])")


def _tolerant_source(pattern: str) -> str:
    """``pattern`` with every literal Latin letter also accepting the lost letter ``_LOST``
    (``tasi`` -> ``[tǂ][aǂ][sǂ][iǂ]``); escapes, group syntax and quantifiers are left alone, and a
    character class that names letters accepts it too."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            step = _ESCAPE_LEN.get(pattern[i + 1 : i + 2], 2)
            out.append(pattern[i : i + step])
            i += step
        elif ch == "(" and (g := _GROUP_OPEN.match(pattern, i)):
            out.append(g.group(0))
            i = g.end()
        elif ch == "[":
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            j += pattern[j : j + 1] == "]"
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            body = pattern[i:j]
            letters = not body.startswith("[^") and any(c.isascii() and c.isalpha() for c in body[1:])
            # the lost letter goes first, where it cannot become the end of a range ("[\\s-]")
            out.append(f"[{_LOST}{body[1:]}]" if letters and body[1:2] != "-" else body + "]")
            i = j + 1
        else:
            out.append(f"[{ch}{_LOST}]" if ch.isascii() and ch.isalpha() else ch)
            i += 1
    return "".join(out)


def _tolerant_patterns(patterns: Sequence[re.Pattern[str]]) -> list[re.Pattern[str]]:
    """The lost-letter-tolerant variants of ``patterns`` (compiled once per pattern)."""
    out: list[re.Pattern[str]] = []
    for rx in patterns:
        if rx.pattern not in _TOLERANT:
            try:
                _TOLERANT[rx.pattern] = re.compile(_tolerant_source(rx.pattern), rx.flags)
            except re.error:  # pragma: no cover - a pattern this reader cannot rewrite
                _TOLERANT[rx.pattern] = None
        tolerant = _TOLERANT[rx.pattern]
        if tolerant is not None:
            out.append(tolerant)
    return out


_SQUEEZE = re.compile(r"\\s[+*?]?|\\b| ")
_NOSPACE: list[re.Pattern[str]] = []


def _nospace_patterns() -> list[re.Pattern[str]]:
    """The Latin patterns with their spaces and word boundaries taken out, for text whose word gaps
    are lost (a PDF prints ``O v e r r i d e  t h e`` and its text layer keeps single spaces)."""
    if not _NOSPACE:
        for rx in INJECTION_PATTERNS:
            try:
                squeezed = _SQUEEZE.sub("", rx.pattern)
                # Only asked whether they match anywhere: a leading "\w+" then matches where "\w" does,
                # and without the word boundary it was tried from every letter of a run ("\w+gpt" on
                # 8,000 squeezed letters cost 0.7 s, quadratic).
                squeezed = "\\w" + squeezed[3:] if squeezed.startswith("\\w+") else squeezed
                _NOSPACE.append(re.compile(squeezed, re.IGNORECASE))
            except re.error:  # pragma: no cover - a pattern whose syntax needs its spaces
                continue
    return _NOSPACE


def _letter_spaced(view: TextView) -> list[tuple[int, int]]:
    """Spans of letter-spaced runs (12+ letters) that read as an instruction once squeezed."""
    out: list[tuple[int, int]] = []
    for m in _SPACED_RUN.finditer(view.text):
        if m.end() - m.start() < 23:
            continue
        squeezed = view.text[m.start() : m.end() : 2]
        if any(rx.search(squeezed) for rx in _nospace_patterns()):
            out.append(view.span(m.start(), m.end()))
    return out


def _despace(view: str) -> tuple[str, list[int] | None]:
    """``view`` with letter-spaced runs (``i g n o r e``, ``i.g.n.o.r.e``) collapsed into words, and
    the view index of each character (None when nothing was collapsed)."""
    if not _SPACED_RUN.search(view):
        return view, None
    chars: list[str] = []
    index: list[int] = []
    pos = 0
    for m in _SPACED_RUN.finditer(view):
        for i in range(pos, m.start()):
            chars.append(view[i])
            index.append(i)
        for i in range(m.start(), m.end(), 2):
            chars.append(view[i])
            index.append(i)
        pos = m.end()
    for i in range(pos, len(view)):
        chars.append(view[i])
        index.append(i)
    return "".join(chars), index


_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
# Tried from the start of a run only, each run of base64 letters possessive (a letter given back can
# only stand where a line break is needed): 8,000 digits on one line cost a second, quadratic.
_B64_WRAPPED = re.compile(r"(?<![A-Za-z0-9+/])(?:[A-Za-z0-9+/]{16,}+[ \t]*+\r?\n[ \t]*+)+[A-Za-z0-9+/]{4,}={0,2}")
_QP_RUN = re.compile(r"(?:=[0-9A-Fa-f]{2}){6,}")
_PCT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9._~+-]){12,}")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){12,}(?![0-9A-Fa-f])")


def _b64_wrapped(run: str) -> str | None:
    return _readable(_b64(re.sub(r"\s+", "", run)) or b"")


def _b64_run(run: str) -> str | None:
    if run.isdigit() or (run.isalpha() and (run.islower() or run.isupper())):
        return None  # a plain word or number, not an encoding
    return _readable(_b64(run) or b"")


def _pct_run(run: str) -> str | None:
    if run.count("%") < 4:
        return None
    return _readable(urllib.parse.unquote_to_bytes(run.replace("+", " ")))


# Each encoding a document may hide text in: the run that looks like it, and how it is read (None:
# not readable text).
_DECODERS: tuple[tuple[re.Pattern[str], Callable[[str], str | None]], ...] = (
    (_B64_WRAPPED, _b64_wrapped),  # a blob wrapped over lines, as mail and PDF writers do
    (_B64_RUN, _b64_run),
    (_QP_RUN, lambda run: _readable(bytes.fromhex(run.replace("=", "")))),
    (_PCT_RUN, _pct_run),
    (_HEX_RUN, lambda run: _readable(bytes.fromhex(run))),
)


def decoded_runs(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, decoded)`` for each run of base64, quoted-printable, percent-encoding, hex or
    Morse in ``text`` that decodes to readable text (random ids, hashes and tracking numbers do not)."""
    out: list[tuple[int, int, str]] = []
    for rx, decode in (*_DECODERS, (_MORSE_RUN, _morse)):
        for m in rx.finditer(text):
            decoded = decode(m.group(0))
            if decoded:
                out.append((m.start(), m.end(), decoded))
    return out


_MORSE_CODES = (
    ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- ...- .-- -..- -.-- --.. "
    "----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----. .-.-.- --..-- ..--.."
)
_MORSE = dict(zip(_MORSE_CODES.split(" "), "abcdefghijklmnopqrstuvwxyz0123456789.,?", strict=True))
_MORSE_RUN = re.compile(r"(?<![\w.-])[.-]{1,6}(?:[ /]{1,3}[.-]{1,6}){7,}(?![\w.-])")


def _morse(run: str) -> str | None:
    """A run of Morse code (letters split by a space, words by two or more or a slash) as text."""
    words = [w for w in re.split(r"\s{2,}|\s*/\s*", run.strip()) if w]
    out = " ".join("".join(_MORSE.get(c, "") for c in w.split()) for w in words)
    return out if sum(ch.isalpha() for ch in out) >= 6 else None


def _b64(run: str) -> bytes | None:
    raw = run.rstrip("=")
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_" if "-" in raw or "_" in raw else None)
    except (binascii.Error, ValueError):
        return None


def _readable(data: bytes) -> str | None:
    """``data`` as text when it is mostly printable UTF-8 with letters (not a hash or an image)."""
    if len(data) < 8:
        return None
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in s)
    letters = sum(ch.isalpha() for ch in s)
    if printable < 0.95 * len(s) or letters < 0.5 * len(s):
        return None
    return s


def _is_prose(s: str) -> bool:
    """Three or more words: a sentence someone encoded, which no order field carries."""
    return len(re.findall(r"[^\W\d_]{2,}", s)) >= 3 and " " in s.strip()


_SENTENCE_END = re.compile(r"(?<=[.!?;。！？])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """``text`` cut after sentence ends and at line breaks (empty pieces dropped)."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]
