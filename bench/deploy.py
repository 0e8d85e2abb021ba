"""Deploy latency: `git push` of the Flask sample to its first HTTP 200 through the router.

Starts its own Kapal (`kapal up` on free ports, temporary data directory), pushes the sample
app N times as new apps (first with a cold uv cache per app, as every new app has), and prints
push duration, push-to-first-200 and the total. Run: .venv/bin/python bench/deploy.py [N]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.kapal_server import new_user, start_server


def main(rounds: int) -> None:
    server = start_server()
    try:
        user = new_user(server, "bench")
        user.kapal("signup", "--email", "bench@example.com", input="benchmark!\n")
        pushes, answers = [], []
        for n in range(rounds):
            name = f"bench-flask-{n}"
            repo = user.checkout("flask-hello", name)
            user.kapal("create", name, cwd=repo)
            started = time.monotonic()
            user.git("push", "kapal", "main", cwd=repo)
            pushed = time.monotonic()
            while user.get(name).status_code != 200:
                time.sleep(0.05)
            answered = time.monotonic()
            pushes.append(pushed - started)
            answers.append(answered - started)
            user.kapal("apps:destroy", "-a", name, "--confirm", name)
        print(f"rounds: {rounds}")
        print(f"git push (build + release):  median {statistics.median(pushes):.2f}s")
        print(
            f"git push to first 200:       median {statistics.median(answers):.2f}s "
            f"(min {min(answers):.2f}s, max {max(answers):.2f}s)"
        )
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
