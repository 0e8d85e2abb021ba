"""A minimal Django project: DATABASE_URL when set (Postgres add-on), SQLite otherwise."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "kapal-sample-app-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]  # the router checks the Host header

INSTALLED_APPS = ["django.contrib.staticfiles", "visits"]  # collectstatic runs at build time
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "hellosite.urls"
WSGI_APPLICATION = "hellosite.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=600
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
