"""The local live debugger: what crossed the local stack's boundaries, in a page and a terminal tail.

`LocalStack(StackConfig(debugger=True))` wires it: the API stand-in reports each exchange, the
Segment sink each `/v1/batch` request, and a watcher the dead-letter queue's content, all into one
`Journal`. `DebuggerServer` serves the page at `http://127.0.0.1:PORT/debugger`; `Tail` prints the
same notices in the terminal (`make run`).
"""

from .journal import Exchange, Journal, Notice, QueuedMessage
from .redact import KnownSecrets, Redactor, last_four
from .server import DebuggerServer, SampleSources, SendResult
from .tail import Tail
from .watch import QueueWatcher

__all__ = [
    "DebuggerServer",
    "Exchange",
    "Journal",
    "KnownSecrets",
    "Notice",
    "QueueWatcher",
    "QueuedMessage",
    "Redactor",
    "SampleSources",
    "SendResult",
    "Tail",
    "last_four",
]
