"""Which log lines a log session wants: `heroku logs --dyno/--ps` and `--source`."""

from __future__ import annotations

from dataclasses import dataclass

from kapal.domain.logline import SOURCES, LogLine

# Heroku users type `--source heroku` for platform lines; Kapal writes those as "kapal".
SOURCE_ALIASES = {"heroku": "kapal"}


MAX_GREP = 200


@dataclass(frozen=True, slots=True)
class LogFilter:
    """`dyno` is a dyno name (`web.1`, exact) or a process type (`web` matches `web.*`;
    `router` and `api` match their own lines); `source` is `app` or `kapal`; `grep` is text
    the message contains, whatever its case. None = any."""

    dyno: str | None = None
    source: str | None = None
    grep: str | None = None

    def __post_init__(self) -> None:
        dyno = self.dyno or None
        source = SOURCE_ALIASES.get(self.source, self.source) if self.source else None
        grep = self.grep or None
        if dyno is not None and (dyno != dyno.strip() or " " in dyno):
            raise ValueError(f"dyno filter {dyno!r} must not contain spaces.")
        if source is not None and source not in SOURCES:
            raise ValueError(f"source filter {source!r} must be one of: {', '.join(SOURCES)}.")
        if grep is not None and (len(grep) > MAX_GREP or any(ch < " " for ch in grep)):
            raise ValueError(
                f"search text must be at most {MAX_GREP} characters, without control characters."
            )
        # Normalised once here so matches() stays a couple of comparisons per line.
        object.__setattr__(self, "dyno", dyno)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "grep", grep.casefold() if grep is not None else None)

    def matches(self, line: LogLine) -> bool:
        if self.source is not None and line.source != self.source:
            return False
        if self.grep is not None and self.grep not in line.message.casefold():
            return False
        if self.dyno is None or line.dyno == self.dyno:
            return True
        # A process type: `web` takes `web.1`, `web.2`...; a full dyno name takes only itself.
        return "." not in self.dyno and line.dyno.startswith(self.dyno + ".")


ANY = LogFilter()
