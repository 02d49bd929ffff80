"""A fault plan for the local Segment sink: what production does to a forwarder, on demand.

`FaultPlan` is a sink `Responder`. Each request draws once from a seeded RNG and, in the chosen
proportions, is dropped (socket closed, no answer), stalled past the client's timeout (and then
accepted, as Segment may have processed it: the retry is a duplicate Segment drops by messageId),
or answered 500, 503 or 429 with Retry-After / X-RateLimit-Reset. Otherwise a request carrying a
"bad" message (a property named `REJECT_MARKER`, or a chosen messageId) gets a 400, like Segment
answers a batch it will never take, so the forwarder must isolate that message.

    plan = FaultPlan(error_500=0.05, rate_limited=0.05, stall=0.02, drop=0.02, seed=7)
    LocalStack(StackConfig(sink_responder=plan, segment_timeout_seconds=0.5))
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .sink import Answer, Drop, ReceivedRequest, Reply, Stall

#: A message whose `properties` contain this key is refused with a 400.
REJECT_MARKER = "__reject__"


def is_marked_bad(message: dict[str, Any], marker: str = REJECT_MARKER, ids: frozenset[str] = frozenset()) -> bool:
    properties = message.get("properties")
    return (isinstance(properties, dict) and marker in properties) or message.get("messageId") in ids


@dataclass
class FaultPlan:
    drop: float = 0.0
    stall: float = 0.0
    #: How long a stalled request waits before answering; set it above the client's timeout.
    stall_seconds: float = 2.0
    error_500: float = 0.0
    error_503: float = 0.0
    rate_limited: float = 0.0
    retry_after_seconds: float = 1.0
    reject_marker: str = REJECT_MARKER
    reject_message_ids: frozenset[str] = frozenset()
    seed: int = 0
    #: Switch every fault off (e.g. to let a redrive through); 400s for bad messages stay.
    enabled: bool = True
    #: What was injected, by kind ("drop", "stall", "500", "503", "429", "400").
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.drop + self.stall + self.error_500 + self.error_503 + self.rate_limited > 1:
            raise ValueError("fault proportions add up to more than 1")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply | None:
        with self._lock:
            roll = self._rng.random()
        rejection = self._rejection(request)
        fault = self._fault(roll, rejection) if self.enabled else None
        reply = fault or rejection
        if reply is not None:
            with self._lock:
                self.injected[_kind(reply)] += 1
        return reply

    def _fault(self, roll: float, rejection: Answer | None) -> Reply | None:
        for share, reply in (
            (self.drop, Drop()),
            (self.stall, Stall(self.stall_seconds, rejection)),
            (self.error_500, _error(500, "internal_error", "injected 500")),
            (self.error_503, _error(503, "service_unavailable", "injected 503")),
            (
                self.rate_limited,
                _error(
                    429,
                    "rate_limited",
                    "injected 429",
                    {
                        "Retry-After": f"{self.retry_after_seconds:g}",
                        "X-RateLimit-Reset": f"{self.retry_after_seconds:g}",
                    },
                ),
            ),
        ):
            if roll < share:
                return reply
            roll -= share
        return None

    def _rejection(self, request: ReceivedRequest) -> Answer | None:
        bad = [m for m in request.messages if is_marked_bad(m, self.reject_marker, self.reject_message_ids)]
        if not bad:
            return None
        return _error(400, "invalid_request", f"{len(bad)} message(s) rejected, first {bad[0].get('messageId')}")


def _kind(reply: Reply) -> str:
    if isinstance(reply, Drop):
        return "drop"
    if isinstance(reply, Stall):
        return "stall"
    return str(reply[0])


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return status, headers or {}, {"code": code, "message": message}
