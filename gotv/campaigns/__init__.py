"""Campaigns' content: survey questions, canned responses, tags, the dashboard, review."""
