"""Every Prometheus metric counted where things happen; the state in the database is read at scrape time.

With PROMETHEUS_MULTIPROC_DIR set (the Procfiles' process group), each process writes its values to files
there and the exporter (`python -m webapp.metrics`) adds them up, so several uvicorn workers and the action
server count as one. Without it (tests, a shell) the values live in this process's default registry.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram, multiprocess

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

TURN_SECONDS = Histogram(
    "civic_turn_seconds",
    "Time a citizen's turn spends in the gateway (transcript, Rasa, replies), by channel and outcome",
    ["channel", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21),
)
RASA_REQUESTS = Counter("civic_rasa_requests", "HTTP requests sent to a Rasa replica", ["replica"])
RASA_ERRORS = Counter(
    "civic_rasa_errors",
    "Requests to a Rasa replica that failed: timeout, connect (refused), transport or http (a 5xx answer)",
    ["replica", "kind"],
)
HTTP_REQUESTS = Counter("civic_http_requests", "Requests the web app answered, by status class (2xx …)", ["code"])
HTTP_SECONDS = Histogram(
    "civic_http_request_seconds",
    "Time the web app took to answer a request (a server-sent event stream counts its whole life)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ASR_DECODE_SECONDS = Histogram(
    "civic_asr_decode_seconds",
    "Time one caller's answer took to decode, by engine (whisper, vosk)",
    ["engine"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
)
# Set, not incremented, by the one decoding thread of each web worker: the workers' values add up.
ASR_QUEUE_DEPTH = Gauge("civic_asr_queue_depth", "Decodings waiting for Whisper's thread", multiprocess_mode="livesum")
PHONE_GATE_REFUSALS = Counter(
    "civic_phone_gate_refusals", "Callers' answers the confidence gate did not believe, by reason", ["reason"]
)
CONSOLE_LIVE_CLIENTS = Gauge(
    "civic_console_live_clients", "Consoles following the live queue (open event streams)", multiprocess_mode="livesum"
)
ACTION_REQUESTS = Counter(
    "civic_action_requests", "Calls to the action server, by action and HTTP status", ["action", "code"]
)
ACTION_SECONDS = Histogram(
    "civic_action_seconds",
    "Time the action server took to run an action",
    ["action"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def process_exiting() -> None:
    """Drops this process's live gauges (calls in its queues, its consoles) from the sum when it stops."""
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        multiprocess.mark_process_dead(os.getpid())
