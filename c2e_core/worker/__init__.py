"""The long-lived worker the host plugins talk to (protocol version 1, ``docs/worker-protocol.md``).

Its parts, each importable alone:

* :mod:`.protocol`: framing, one JSON header line per message and its raw payloads;
* :mod:`.pixels`: the pixel codec (RGBA/BGRA/RGB/GRAY..., u8/u16/f16/f32, linear or sRGB);
* :mod:`.models`: the cache of loaded models, keyed by weights file and device;
* :mod:`.handlers`: the requests (``hello``, ``colorize``), weights and device resolved once;
* :mod:`.server`: the reader thread, the job queue (``cancel``) and ``c2e worker``'s entry.

Importing this package imports none of them (no numpy, no torch); ``run`` and ``serve`` load
the server when called.
"""

from __future__ import annotations

from typing import Any

PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "run", "serve"]


def run(args: Any) -> int:
    """``c2e worker``: see :func:`c2e_core.worker.server.run`."""
    from c2e_core.worker.server import run as run_server

    return run_server(args)


def serve(*args: Any, **kwargs: Any) -> int:
    """Serve the protocol on binary streams: see :func:`c2e_core.worker.server.serve`."""
    from c2e_core.worker.server import serve as serve_streams

    return serve_streams(*args, **kwargs)
