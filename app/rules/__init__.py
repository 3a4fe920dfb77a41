"""The business rules, and the tables they own: what a verification is, its verdict, review, outcomes,
retention and erasure, the audit log, sessions and webhook receipts, and the words a customer reads.

Plain functions and models that the API, widget, branch, console and CLI all call; nothing here imports a
blueprint (`import-linter` holds it, contracts in pyproject.toml).
"""
