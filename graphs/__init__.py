"""LangGraph graphs: the exception run (graphs.exception), its durable checkpoints and runs index."""
