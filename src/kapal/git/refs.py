"""What a push asks for (pre-receive's stdin) and whether it deploys: pure functions."""

from __future__ import annotations

from dataclasses import dataclass

DEPLOY_REFS = ("refs/heads/main", "refs/heads/master")


class PushRefused(Exception):
    """The push cannot deploy; `message` is shown to the pusher after ` !     `."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def deletes(self) -> bool:
        return set(self.new) == {"0"}

    @property
    def short_ref(self) -> str:
        return self.ref.removeprefix("refs/heads/")


def parse_updates(text: str) -> list[RefUpdate]:
    """`<old> <new> <ref>` per line; the last line may lack its newline."""
    updates = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"pre-receive input line {number} is not '<old> <new> <ref>'")
        updates.append(RefUpdate(*fields))
    return updates


def deploy_target(updates: list[RefUpdate]) -> RefUpdate:
    """The update to build: the push may only move main or master (the last one wins)."""
    if not updates:
        raise PushRefused("Nothing to deploy: this push updates no branch.")
    for update in updates:
        if update.deletes:
            raise PushRefused(
                f"Deleting {update.short_ref} is not allowed; push to main (or master) to deploy."
            )
        if update.ref not in DEPLOY_REFS:
            raise PushRefused(f"Push to main (or master) to deploy; you pushed {update.short_ref}.")
    return updates[-1]
