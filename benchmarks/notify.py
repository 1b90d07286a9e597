"""The dispatcher's throughput: outbox rows delivered per second.

Two runs on a SQLite store (WAL, a file, as in production):

1. The file channel (JSON lines): the dispatcher's own cost — a claim
   transaction per batch and a record transaction per row.
2. A signed webhook to a local HTTP server (threading ``http.server`` on
   127.0.0.1): the cost with a real HTTP round trip per message.

    python benchmarks/notify.py                        # 20,000 rows; 2,000 webhooks
    python benchmarks/notify.py --rows 5000 --webhooks 500

A day of the tracker at 1M accounts queues as many rows as accounts churn or
follow up that day (thousands at the simulator's rates), so the figure to
read is seconds per thousand rows. Timings on a shared 2-core machine are
noisy: run it twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

from churnwatch.notify import FileChannel, RetryPolicy, WebhookChannel, dispatch
from churnwatch.store import OUTBOX, Store, open_store

NOW = dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)


def _queue(store: Store, count: int, channel: str) -> None:
    rows = []
    for i in range(count):
        episode = f"acct{i}||2024-03-01|snapshot"
        payload = {
            "account_id": f"acct{i}",
            "name": f"Merchant {i}",
            "csm_id": f"csm{i % 40}",
            "revenue": 1000.0,
            "revenue_at_risk": 640.0,
            "days_since_churn": 0,
            "reasons": ["fewer logins", "failed payment", "plan downgrade"],
            "episode_id": episode,
            "step": "first",
        }
        rows.append(
            {
                "idempotency_key": f"{episode}|first|{channel}",
                "created_at": NOW,
                "channel": channel,
                "recipient_csm_id": f"csm{i % 40}",
                "kind": "churn",
                "step": "first",
                "account_id": f"acct{i}",
                "product": "",
                "episode_id": episode,
                "payload": json.dumps(payload),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": NOW,
            }
        )
    with store.transaction() as connection:
        connection.execute(OUTBOX.insert(), rows)


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _run(folder: Path, rows: int, channel_name: str, channel: Any) -> dict[str, Any]:
    store = open_store(f"sqlite:///{folder / f'{channel_name}.sqlite'}")
    _queue(store, rows, channel_name)
    started = time.perf_counter()
    report = dispatch(store, {channel_name: channel}, now=NOW, policy=RetryPolicy(batch_rows=50))
    seconds = time.perf_counter() - started
    store.close()
    if report.sent != rows:
        raise SystemExit(f"{channel_name}: sent {report.sent} of {rows}")
    return {
        "channel": channel_name,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "ms_per_row": round(1000 * seconds / rows, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--webhooks", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = [_run(folder, args.rows, "file", FileChannel(folder / "out.jsonl"))]
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        webhook = WebhookChannel(f"http://{host!s}:{port}/", "bench-secret")
        try:
            results.append(_run(folder, args.webhooks, "webhook", webhook))
        finally:
            webhook.close()
            server.shutdown()
    for result in results:
        print(json.dumps(result))
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb())}))


if __name__ == "__main__":
    main()
