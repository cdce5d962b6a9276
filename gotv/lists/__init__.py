"""Voter lists: reading files, phone numbers, imports and exports."""
