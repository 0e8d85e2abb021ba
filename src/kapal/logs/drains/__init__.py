"""Log drain delivery: every line of an app's stream also goes to each of the app's drains.

The drain set (`_set`) starts and stops the drains the agent reads from the store. Each drain has
its own queue and task (`_drain`), and a transport: syslog over TCP or TLS (`_syslog`), or
Logplex's HTTPS POSTs (`_http`).
"""

from kapal.logs.drains._drain import DrainSpec
from kapal.logs.drains._set import DrainSet

__all__ = ["DrainSet", "DrainSpec"]
