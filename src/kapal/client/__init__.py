"""Typed HTTP client for Kapal's Platform API (Heroku v3 paths and JSON), used by the CLI."""

from kapal.client.errors import KapalApiError, KapalClientError, KapalConnectionError
from kapal.client.http import KapalClient

__all__ = ["KapalApiError", "KapalClient", "KapalClientError", "KapalConnectionError"]
