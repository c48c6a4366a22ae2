"""B2B order intake: parsers that turn purchase orders (EDI now; PDF, e-mail, CSV later) into the
canonical :class:`intake.model.PurchaseOrder`, with a source pointer for every value.

Parsing structured EDI is deterministic code, never an LLM; parsers return findings and never
raise on bad input.
"""
