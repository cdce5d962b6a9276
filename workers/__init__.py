"""Background jobs, run by `python -m workers`. Jobs are plain functions that take ids."""
