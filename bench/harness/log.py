"""Progress lines of a run on stderr, stamped with the time and the seconds since the start."""

import sys
import time

STARTED = time.monotonic()


def info(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp} +{time.monotonic() - STARTED:.0f}s] {message}", file=sys.stderr, flush=True)
