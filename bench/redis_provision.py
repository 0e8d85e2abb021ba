"""kapal-redis provisioning: how long `RedisProvisioner.provision` takes, from nothing to a
server that answers PING with its password (the URL an app gets), and deprovisioning.

Provisions --runs add-ons (alternating mini and premium-0) in a temporary data directory,
then deprovisions them. Prints the median (and min, max) of each, beside the issue's target
for provisioning (0.3 s); never asserts.

Run: .venv/bin/python bench/redis_provision.py [--runs 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kapal.addons.redis import RedisProvisioner
from kapal.settings import Settings

TARGET = 0.3


def timed(action: Callable[..., object], *args: str) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    root = Path(tempfile.mkdtemp(prefix="kapal-bench-redis-"))
    root.chmod(0o711)  # as root, the servers run as kapal-redis and must pass through
    provisioner = RedisProvisioner(Settings(data_dir=root))
    names = [f"redis-bench-{n}" for n in range(runs)]
    try:
        made = [
            timed(provisioner.provision, name, "premium-0" if n % 2 else "mini")
            for n, name in enumerate(names)
        ]
        removed = [timed(provisioner.deprovision, name) for name in names]
    finally:
        for name in provisioner.names():
            provisioner.deprovision(name)
        shutil.rmtree(root, ignore_errors=True)
    for what, times, target in (("provision", made, TARGET), ("deprovision", removed, None)):
        line = (
            f"{what:<12} median {statistics.median(times) * 1000:6.1f} ms  "
            f"min {min(times) * 1000:6.1f} ms  max {max(times) * 1000:6.1f} ms  ({runs} runs)"
        )
        print(line + (f"  target < {target * 1000:.0f} ms" if target else ""))


if __name__ == "__main__":
    main()
