"""Logging for Kapal's processes: configured once, in each process's entry point."""

from __future__ import annotations

import logging


def configure(process: str) -> None:
    """`api: INFO kapal.x: message` lines; libraries only speak up when something is wrong
    (migrations and uvicorn's start-up banners would otherwise crowd `kapal up`'s output)."""
    logging.basicConfig(
        level=logging.INFO, format=f"{process}: %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "uvicorn", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
