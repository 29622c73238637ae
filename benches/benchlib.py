"""Helpers shared by the benchmark scripts run from benches/."""
import socket
import time


def port(kind=socket.SOCK_STREAM):
    """A free loopback port (TCP, or UDP with socket.SOCK_DGRAM)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(what, check, within=30, every=0.05, bench="benchmark"):
    """Polls `check` until it returns something true (exceptions count as not yet)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            v = check()
            if v:
                return v
        except Exception:
            pass
        time.sleep(every)
    raise SystemExit(f"{bench}: timed out waiting for {what}")
