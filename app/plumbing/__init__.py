"""The plumbing under the rules: database, encryption at rest, files, background jobs, requests and
responses (htmx, CSV, headers, guards, rate limits, the access log), languages, the PASSID connection.

Nothing here knows a business rule (`import-linter` holds it, contracts in pyproject.toml).
"""
