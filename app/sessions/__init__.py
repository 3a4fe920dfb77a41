"""Sessions created by the institution's server (`POST /api/sessions`), as Stripe Identity's VerificationSession.

The bank's backend creates a session for one of its applications (its `reference`), with the
permissions, institution name and return URL it chooses; the browser only carries the session's
id. The widget shows that session with its options locked, verifies one customer (retries until
the first success or expiry), and the backend reads the outcome with `GET /api/sessions/<id>`
instead of trusting the browser to say which applicant a result belongs to.

The API's routes are in `app.api.sessions`; this package holds what they and the widget share.
"""
