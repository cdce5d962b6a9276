"""People: the team, two-step sign-in, the audit log."""
