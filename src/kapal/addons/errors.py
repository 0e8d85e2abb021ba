"""Errors of add-on providers, in the platform's error tree."""

from __future__ import annotations

from kapal.domain.errors import KapalError


class ProvisionError(KapalError):
    """The provider could not create or remove the resource; the request may be retried."""

    id = "service_unavailable"
    status = 503


class ClusterError(RuntimeError):
    """Kapal's own PostgreSQL cluster or MariaDB server could not be set up, started or
    stopped."""
