"""Compliance: opt-outs, keywords, quiet hours, first-message lint, carrier errors."""
