"""The router's tunables, with Heroku's numbers as defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouterConfig:
    apps_domain: str = "localhost"
    bind: str = "127.0.0.1"
    port: int = 8080  # 0 picks a free port (tests)
    tls_port: int = 8443  # HTTPS, when the router is given certificates; 0: a free port
    # Requests for an app whose web dynos are still starting wait this long (then H20).
    boot_timeout: float = 75.0
    # The app must send the first response byte within this long after the request (H12).
    request_timeout: float = 30.0
    # After the response head, no byte either way for this long ends the exchange (H15); a
    # WebSocket tunnel gets the same rolling window. Checked at each sweep.
    idle_timeout: float = 55.0
    connect_timeout: float = 5.0  # per connect attempt (H19)
    connect_attempts: int = 10  # distinct dynos tried before H21/H19
    # Idle keep-alive client connections (and clients stuck sending a head) are closed after this.
    client_idle_timeout: float = 60.0
    # Pooled upstream connections are reused only while younger than this. It is shorter than
    # common app servers' keep-alive (gunicorn 2 s, uvicorn 5 s), so an app never closes a
    # connection at the moment the router picks it for a new request.
    upstream_idle_timeout: float = 1.5
    max_idle_per_backend: int = 256
    max_line: int = 8192  # request line or one header line
    max_headers: int = 1000
    max_request_head: int = 1 << 20
    max_response_head: int = 1 << 20
    write_high_water: int = 256 * 1024  # per transport, before pausing the other side
    backlog: int = 4096
    reuse_port: bool = True  # several router processes may share the port
    sweep_interval: float = 1.0
