"""Entry point for any WSGI server (`make run` serves it with Granian) and `flask --app wsgi`.

A bad setting stops the import here with one sentence per problem on stderr and a non-zero exit
(`create_app()` reads the process environment through `load_settings_or_exit`), so whichever server
imports `wsgi:app` shows the operator what to fix, not a traceback.
"""

from app import create_app
from app.plumbing.background import start_background_jobs

app = create_app()
start_background_jobs(app)
