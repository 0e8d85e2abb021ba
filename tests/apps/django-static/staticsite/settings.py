"""The smallest Django project with a static file, which collectstatic copies at build time."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "kapal-sample-app-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = ["django.contrib.staticfiles"]
ROOT_URLCONF = "staticsite.urls"
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Kapal's tests set the config var NO_STATIC_ROOT=1 to make collectstatic fail.
STATIC_ROOT = None if os.environ.get("NO_STATIC_ROOT") == "1" else BASE_DIR / "staticfiles"
