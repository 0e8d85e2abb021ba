"""Log lines for bench/logs.py: as fast as this process can write them, or LINES_PER_SECOND.
Each line holds the time it was written (time.time()) and this dyno's sequence number, and is
padded to about LINE_BYTES bytes."""

import os
import sys
import time


def main() -> None:
    size = int(os.environ.get("LINE_BYTES", "100"))
    rate = float(os.environ.get("LINES_PER_SECOND", "0"))
    now = time.time
    pad = b"x" * max(0, size - len(b"%.6f %d \n" % (now(), 100_000)))
    # The dyno's stdout is unbuffered (PYTHONUNBUFFERED): a buffer of our own, so the pipe
    # sees large writes and the writer spends its time making lines.
    with open(sys.stdout.fileno(), "wb", buffering=8192, closefd=False) as out:
        write, seq = out.write, 0
        if not rate:
            while True:
                write(b"%.6f %d %s\n" % (now(), seq, pad))
                seq += 1
        started = now()
        while True:
            due = int((now() - started) * rate)
            while seq < due:
                write(b"%.6f %d %s\n" % (now(), seq, pad))
                seq += 1
            out.flush()
            time.sleep(0.001)


if __name__ == "__main__":
    main()
