"""`make run`'s live terminal tail: one readable line per thing that happened, as it happens.

    12:00:01  webhook  POST /v1/webhooks/spec/demo   202  spec · demo  accepted 1 · skipped 0 · rejected 0
                  fixed  #0 spec.event_name  event "order_completed" is ... → Fix: rename the event to "Order Completed"
    12:00:02  segment  POST /v1/batch us             200  1 message · 0.4 KB · attempt 1 · key ••••cdef · demo
    12:00:09  dlq      demo/spec                     400  1 message: Segment answered 400 ...

Lines are `rich` Text (colour where the terminal supports it, plain text when piped), built from
the journal's summaries, which are already masked. What a sender wrote is never read as markup.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from .journal import Notice

#: Colour of an HTTP status by its first digit (0: no answer at all).
STATUS_STYLE = {"2": "green", "3": "cyan", "4": "yellow", "5": "red", "0": "red"}
ACTION_STYLE = {"fixed": "cyan", "warned": "yellow", "rejected": "red"}
#: Width of the route column, so statuses line up.
ROUTE_WIDTH = 34


def _status(status: int | str | None) -> Text:
    text = str(status or "---")
    return Text(f"{text:>3}", style=f"bold {STATUS_STYLE.get(text[0], 'white')}")


def _head(at: float, label: str, style: str) -> Text:
    line = Text(time.strftime("%H:%M:%S", time.localtime(at)), style="dim")
    line.append("  ")
    line.append(f"{label:<8}", style=style)
    line.append(" ")
    return line


def webhook_lines(entry: dict[str, Any]) -> list[Text]:
    # Segment's own calls to the bridge's destination endpoint (the identity loop) are "dest"; a Segment
    # library's Tracking API calls (docs/tracking-api.md) are "library".
    label = {"destination": "dest", "tracking": "library"}.get(entry["kind"], "webhook")
    line = _head(entry["at"], label, "bold blue")
    line.append(f"{entry['method']} {entry['path']}".ljust(ROUTE_WIDTH))
    line.append(" ")
    line.append_text(_status(entry["status"]))
    line.append("  ")
    who = " · ".join(p for p in (entry.get("source"), entry.get("tenant")) if p)
    if who:
        line.append(who + "  ", style="magenta")
    if entry["kind"] == "destination":
        if entry.get("applied") is not None:
            line.append(f"applied {entry['applied']}")
    elif entry["accepted"] or entry["rejected"] or entry["skipped"]:
        line.append(f"accepted {entry['accepted']} · skipped {entry['skipped']} · rejected {entry['rejected']}")
    if entry.get("message"):
        line.append(f"  {entry['message']}", style="yellow")
    lines = [line]
    for finding in entry["findings"]:
        detail = Text("            ")
        detail.append(f"{finding['action']:>8}", style=ACTION_STYLE.get(finding["action"], "white"))
        index = f"#{finding['index']} " if finding.get("index") is not None else ""
        detail.append(f"  {index}{finding['code']}  {finding['message']}")
        if finding.get("fix"):
            detail.append(f" → Fix: {finding['fix']}", style="cyan")
        lines.append(detail)
    return lines


def refused_lines(entry: dict[str, Any], events: Iterable[dict[str, Any]]) -> list[Text]:
    """One line per rejected event (its reason: what the sender must fix); skips in one line (deliberate)."""
    lines = []
    skipped: list[str] = []
    for event in events:
        if event["outcome"] == "rejected":
            line = Text("            ")
            line.append("rejected", style="red")
            line.append(f"  #{event['index']} {event['reason']}")
            lines.append(line)
        elif event["outcome"] == "skipped":
            skipped.append(str(event["reason"]))
    if skipped:
        line = Text("            ")
        line.append(" skipped", style="dim")
        more = f" (+{len(skipped) - 1} more in the debugger)" if len(skipped) > 1 else ""
        line.append(f"  {skipped[0]}{more}", style="dim")
        lines.append(line)
    return lines


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def request_line(entry: dict[str, Any]) -> Text:
    line = _head(entry["at"], "segment", "bold green" if entry["status"] == 200 else "bold red")
    line.append(f"POST {entry['path']} {entry.get('region') or '?'}".ljust(ROUTE_WIDTH))
    line.append(" ")
    line.append_text(_status(entry["status"]))
    line.append(
        f"  {plural(entry['messages'], 'message')} · {entry['bytes'] / 1024:.1f} KB · attempt {entry['attempt']}"
    )
    if entry.get("duplicates"):
        line.append(f" · {entry['duplicates']} already delivered (Segment drops them by messageId)", style="dim")
    if entry.get("writeKey"):
        line.append(f" · key {entry['writeKey']}", style="dim")
    if entry.get("tenants"):
        line.append(f" · {', '.join(entry['tenants'])}", style="magenta")
    if entry.get("error"):
        line.append(f"  {entry['error']}", style="yellow")
    return line


def dead_letter_line(entry: dict[str, Any], gone: bool = False) -> Text:
    line = _head(entry["at"] if not gone else time.time(), "dlq", "bold red" if not gone else "dim")
    line.append(f"{entry['tenant'] or '?'}/{entry['source'] or '?'}".ljust(ROUTE_WIDTH))
    line.append(" ")
    line.append_text(_status(entry.get("status")))
    if gone:
        line.append(f"  {plural(entry['messages'], 'message')} left the DLQ (redriven or deleted)", style="dim")
    else:
        line.append(f"  {plural(entry['messages'], 'message')}: {entry['reason']}", style="red")
    return line


class Tail:
    """A journal listener that prints each notice to `console` (see the module docstring)."""

    def __init__(self, console: Console, details: Any = None) -> None:
        self.console = console
        #: `journal.detail`, to print rejected events' reasons (summaries carry only counts).
        self.details = details
        #: Notices come from several threads (API stand-in, sink, DLQ watcher): keep each one's lines together.
        self._lock = threading.Lock()

    def lines(self, notice: Notice) -> list[Text]:
        entry = notice.entry
        if notice.kind == "webhook":
            lines = webhook_lines(entry)
            if self.details is not None and (entry["rejected"] or entry["skipped"]):
                detail = self.details("webhooks", entry["id"])
                if detail is not None:
                    lines += refused_lines(entry, detail["eventsDetail"])
            return lines
        if notice.kind == "request":
            return [request_line(entry)]
        if notice.kind == "dead_letter":
            return [dead_letter_line(entry)]
        if notice.kind == "dead_letter_gone":
            return [dead_letter_line(entry, gone=True)]
        return []

    def __call__(self, notice: Notice) -> None:
        lines = self.lines(notice)
        with self._lock:
            for line in lines:
                self.console.print(line, soft_wrap=True, highlight=False)
