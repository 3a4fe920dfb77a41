"""Entry point for gunicorn (`gunicorn wsgi:app`) and `flask --app wsgi`."""

from app import create_app
from app.background import start_background_jobs

app = create_app()
start_background_jobs(app)
