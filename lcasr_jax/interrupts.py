"""Ctrl-C and SIGTERM deferred to a safe point: long jobs stop between units of work.

`deferred_signals(what)` sets the returned Event on SIGINT/SIGTERM instead of raising, says
on stderr what will happen (`what`), and raises KeyboardInterrupt at once on a second signal.
The job checks the Event where stopping is safe (training: after a step, then checkpoint;
writing a model dir: before the swap, then remove the temp dir). Previous handlers are
restored on exit. Off the main thread (where Python delivers no signals) it never fires.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def deferred_signals(what: str) -> Iterator[threading.Event]:
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(f"{signal.Signals(signum).name}: {what} (send again to stop at once)",
              file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(s) is not signal.SIG_IGN}  # nohup / background jobs
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
