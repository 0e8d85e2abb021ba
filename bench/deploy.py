"""Deploy latency: from the start of `git push` until the router serves the new version.

Starts its own Kapal (`kapal up` on free ports, temporary data directory), signs up a user and,
for tests/apps/flask-hello and tests/apps/django-hello, times three scenarios, every run on a
new app: the first deploy with a cold build cache; a redeploy of a one-line change with a warm
cache; a redeploy that adds a dependency (six) to requirements.txt. Prints the median of the
runs, and of each phase (see push_timer.py), per scenario. It never asserts timings.

Run: .venv/bin/python bench/deploy.py [--runs 5] [--app flask --app django] [--budget 600]
(`make bench` runs it with the defaults.)
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kapal_up import BenchError, Kapal, User, running_kapal, signed_up_user, stop_on_sigterm
from push_timer import SERVE_TIMEOUT, Timing, Watch, serves, timed_push
from report import Row, table

DEPENDENCY, DEPENDENCY_VERSION = "six", "1.17.0"  # small, pure Python, needed by neither sample
SERVE_POLL = 0.1
LEGEND = """
Medians over the runs; each run on a new app, destroyed afterwards. Phases end at the push's
lines "Building source:" (receive), "-----> Compressing..." (build), "Done: <size>" (slug),
"Released v<N>" (release, including a release phase), then the API listing the new web dyno up
(boot) and the router's first answer from the new version (route switch). Push lines arrive in
0.1 s batches (the build log is tailed), so a shorter phase can read 0.00."""


@dataclass(frozen=True)
class Sample:
    key: str  # in app names and on the command line
    directory: str  # under tests/apps
    source: str  # the file that answers /
    literal: str  # the greeting's string literal there, as written
    answer: str  # what / answers as committed


SAMPLES = {
    "flask": Sample("flask", "flask-hello", "app.py", '"Hello from Kapal\\n"', "Hello from Kapal"),
    # Without DATABASE_URL its settings use SQLite: the release phase (`migrate`) runs, and /
    # does not touch the database, so no Postgres add-on is needed for these timings.
    "django": Sample(
        "django",
        "django-hello",
        "visits/views.py",
        '"Hello from Kapal (Django)\\n"',
        "Hello from Kapal (Django)",
    ),
}


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise BenchError(f"{path}: expected {old} exactly once; did the sample change?")
    path.write_text(text.replace(old, new))


def one_line_change(repo: Path, sample: Sample, run: int) -> str:
    """Change the greeting's one line; what / answers then."""
    answer = f"Hello from Kapal, edit {run}"
    _replace_once(repo / sample.source, sample.literal, f'"{answer}\\n"')
    return answer


def added_dependency(repo: Path, sample: Sample, run: int) -> str:
    """Require six, pinned, and show its version in the greeting; what / answers then."""
    requirements = repo / "requirements.txt"
    text = requirements.read_text()
    separator = "" if text.endswith("\n") else "\n"
    requirements.write_text(f"{text}{separator}{DEPENDENCY}=={DEPENDENCY_VERSION}\n")
    source = repo / sample.source
    greeting = f'f"Hello from Kapal, {DEPENDENCY} {{{DEPENDENCY}.__version__}}\\n"'
    _replace_once(source, sample.literal, greeting)
    source.write_text(f"import {DEPENDENCY}\n{source.read_text()}")
    return f"{DEPENDENCY} {DEPENDENCY_VERSION}"


@dataclass(frozen=True)
class Scenario:
    key: str  # in app names
    title: str
    change: Callable[[Path, Sample, int], str] | None  # None: the app's first deploy is timed


SCENARIOS = (
    Scenario("cold", "first deploy, cold cache", None),
    Scenario("edit", "one-line change, warm cache", one_line_change),
    Scenario("dep", f"added dependency ({DEPENDENCY}), warm", added_dependency),
)
# The targets on this 2-core machine; printed next to the figures, never asserted.
TARGETS = {
    ("flask", "cold"): "<= 5 s",
    ("flask", "edit"): "<= 2.0 s (a peer: 4.5 s)",
    ("django", "edit"): "<= 4 s",
}


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(path.is_file() for path in directory.rglob("*"))


def wait_until_serves(user: User, app: str, answer: str) -> None:
    watch = Watch("serve", lambda: user.router_client(app), serves(answer), SERVE_POLL)
    if watch.wait(time.monotonic() + SERVE_TIMEOUT) is None:
        watch.cancel()
        raise BenchError(
            f"{app} did not answer {answer!r} within {SERVE_TIMEOUT:g} s: {watch.last}"
        )


def run_once(kapal: Kapal, user: User, sample: Sample, scenario: Scenario, run: int) -> Timing:
    """One timed push on a new app (deployed once, untimed, first when the scenario is a
    redeploy); the app is destroyed afterwards."""
    name = f"{sample.key}-{scenario.key}-{run}"
    repo = user.checkout(sample.directory, name)
    user.cli("create", name, cwd=repo)
    try:
        cache = kapal.cache_dir(user.api(f"/apps/{name}")["id"])
        expected = sample.answer
        if scenario.change is None:
            if _has_files(cache):
                raise BenchError(f"{name}: a new app's build cache {cache} is not empty")
        else:
            user.git("push", "kapal", "main", cwd=repo)
            wait_until_serves(user, name, sample.answer)
            if not _has_files(cache / "uv"):
                raise BenchError(f"{name}: its first deploy left no uv cache in {cache}")
            expected = scenario.change(repo, sample, run)
            user.commit(repo, scenario.title)
        return timed_push(user, repo, name, expected)
    finally:
        try:
            user.cli("apps:destroy", "-a", name, "--confirm", name)
        except BenchError as exc:
            print(f"could not destroy {name}: {exc}", file=sys.stderr)
        shutil.rmtree(repo, ignore_errors=True)


def machine() -> str:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"machine: {len(os.sched_getaffinity(0))} cores (nproc), Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; load {load}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (default 5)")
    parser.add_argument(
        "--app", action="append", choices=sorted(SAMPLES), help="sample app (default: both)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=600.0,
        help="seconds after which no new round of runs starts (default 600)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    samples = [SAMPLES[key] for key in args.app or ["flask", "django"]]
    results: dict[tuple[str, str], list[Timing]] = {
        (sample.key, scenario.key): [] for sample in samples for scenario in SCENARIOS
    }
    stop_on_sigterm()
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(machine(), flush=True)
    started, status, rounds = time.monotonic(), 0, 0
    try:
        with running_kapal() as kapal:
            user = signed_up_user(kapal)
            # Kapal's own first build pays for imports and lookups no later deploy does.
            print("warm-up: one untimed deploy of flask-hello", file=sys.stderr)
            run_once(kapal, user, SAMPLES["flask"], SCENARIOS[0], 0)
            for run in range(1, args.runs + 1):
                if time.monotonic() - started > args.budget:
                    print(f"time budget ({args.budget:g} s) spent", file=sys.stderr)
                    break
                # Interleaved, so a busy minute on a shared machine hits every row alike.
                for sample in samples:
                    for scenario in SCENARIOS:
                        timing = run_once(kapal, user, sample, scenario, run)
                        results[sample.key, scenario.key].append(timing)
                        print(
                            f"{sample.directory} {scenario.title} run {run}: {timing.total:.2f} s",
                            file=sys.stderr,
                        )
                rounds = run
    except BenchError as exc:
        print(f"bench stopped: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("bench interrupted", file=sys.stderr)
        status = 130
    print(f"{machine()} (after)")
    print(f"{rounds} of {args.runs} rounds in {time.monotonic() - started:.0f} s")
    for sample in samples:
        rows = [
            Row(
                scenario.title,
                TARGETS.get((sample.key, scenario.key), ""),
                results[sample.key, scenario.key],
            )
            for scenario in SCENARIOS
        ]
        print()
        print(table(f"{sample.directory}: seconds from `git push` to the new version served", rows))
    print(LEGEND)
    return status


if __name__ == "__main__":
    sys.exit(main())
