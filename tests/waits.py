"""How the tests wait (issue 24 case 18): on events, never on a clock.

A test waits for something a process reports (a line it prints, a file it writes, its exit
status, a hook that runs inside it), never for some time to pass, and never gives up on a
slow machine: `HANG_S` is only where a wait is called hung, far beyond any run on a loaded
machine (a 2-core machine at load 10 ran the whole suite in 31 minutes).
"""

HANG_S = 3600  # seconds: a child process or peer silent this long is hung, not slow
