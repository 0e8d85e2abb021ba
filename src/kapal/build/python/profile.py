"""The runtime defaults the Python buildpack leaves in the slug as `.profile.d/python.sh`.

A dyno sources it before its command, after its config vars are set, so each default applies
only where the variable is unset or empty: config vars win. Plain POSIX sh (dash runs it).
WEB_CONCURRENCY follows Heroku's rule: one gunicorn worker per 256 MB of the dyno's memory
(DYNO_RAM, in MB, when the runtime sets it, else 512), at most 2 per CPU core plus 1.
"""

from __future__ import annotations

DIRECTORY = ".profile.d"
NAME = "python.sh"
DEFAULT_RAM_MB = 512
RAM_PER_WORKER_MB = 256

SCRIPT = f"""\
# Written by Kapal's Python buildpack. Config vars override every default below.
export PATH="$HOME/.venv/bin:$PATH"
export PYTHONUNBUFFERED="${{PYTHONUNBUFFERED:-true}}"
export LANG="${{LANG:-C.UTF-8}}"
export FORWARDED_ALLOW_IPS="${{FORWARDED_ALLOW_IPS:-*}}"
if [ -z "${{GUNICORN_CMD_ARGS:-}}" ]; then
    export GUNICORN_CMD_ARGS='--access-logfile -'
fi
if [ -z "${{WEB_CONCURRENCY:-}}" ]; then
    kapal_ram="${{DYNO_RAM:-{DEFAULT_RAM_MB}}}"
    case "$kapal_ram" in
        '' | *[!0-9]*) kapal_ram={DEFAULT_RAM_MB} ;;
    esac
    # Without leading zeros, which would make it octal in $(( )).
    kapal_ram=${{kapal_ram#"${{kapal_ram%%[!0]*}}"}}
    case "$kapal_ram" in
        '') kapal_ram=0 ;;
        ?????????*) kapal_ram=99999999 ;;
    esac
    kapal_cores="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"
    case "$kapal_cores" in
        '' | *[!0-9]* | 0) kapal_cores=1 ;;
    esac
    kapal_workers=$((kapal_ram / {RAM_PER_WORKER_MB}))
    if [ "$kapal_workers" -gt $((kapal_cores * 2 + 1)) ]; then
        kapal_workers=$((kapal_cores * 2 + 1))
    fi
    if [ "$kapal_workers" -lt 1 ]; then
        kapal_workers=1
    fi
    export WEB_CONCURRENCY="$kapal_workers"
    unset kapal_ram kapal_cores kapal_workers
fi
"""
