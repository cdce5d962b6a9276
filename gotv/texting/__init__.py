"""Texting: conversations, the outbox and its pump, batches, pacing, segments, live events."""
