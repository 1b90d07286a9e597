"""The REST API under load on loopback: risk reads, on-demand scoring, event ingest.

    python benchmarks/api.py                        # 1M accounts, 2 server workers
    python benchmarks/api.py --accounts 100000 --duration 10

1. A churn model (30 days) is trained on a small simulated business
   (--train-accounts, monthly cutoffs, default features, no search: the
   trees alone) and promoted in the project's registry; or, with --model
   REGISTRY, the promoted model of another registry is copied in (say the
   blend that benchmarks/scoring.py trains with the default search). Its
   features and scores of the small business's accounts at the last cutoff
   are the seed rows.
2. A read model of --accounts accounts is written with
   ``churnwatch.views.write_generation``: each account's features are a
   copy of a random seed row, and its risk, tier, reasons and revenue at
   risk are the model's for that row (so the on-demand score must equal
   the stored one); three months of risk history per account.
3. ``churnwatch serve --workers N`` is started on 127.0.0.1 in another
   process (the real command), and an API key of scope write is made.
4. An asyncio client (a minimal HTTP/1.1 keep-alive client: see
   :class:`Connection` for why not httpx) keeps --concurrency requests in
   flight for --duration seconds per phase, on random accounts:
   ``GET /accounts/{id}`` (risk, reasons, history), ``POST
   /accounts/{id}/score`` (the promoted model now, with reasons) and
   ``POST /events`` (batches of --batch new events). Printed per phase:
   requests/s, p50 and p99 latency, errors (any answer but 200, or a
   transport error); for ingest also events/s. Every on-demand score is
   compared with the read model's stored risk of that account.
5. Then reads and scoring again in open loop: --rate requests/s started on
   schedule over up to --connections connections, latency counted from
   when each request was due: the latency at a given load, where the
   closed loop gives the most the server can do (and, by Little's law, a
   mean latency of in-flight requests / throughput).

Targets (2 cores, client and server on the same machine): reads and
scoring >= 500 requests/s with p99 < 50 ms and no errors; ingest >= 5,000
events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

TARGET = "churn_30d"


def train(
    project: Path, work: Path, accounts: int, model: Path | None = None
) -> tuple[pa.Table, pa.Table]:
    """Train (or copy) and promote a model in ``project``; return the seed features and scores."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from churnwatch.config import Settings
    from churnwatch.features import FeatureSpec, compute_features
    from churnwatch.ingest import ingest
    from churnwatch.ingest.presets import preset_sources
    from churnwatch.labels import LabelSpec
    from churnwatch.models import ModelRegistry, register_model, training_frame, training_schedule
    from churnwatch.scoring import data_end, score_accounts
    from churnwatch.simulate import simulate
    from churnwatch.warehouse import connect

    churn = LabelSpec("subscription", horizon_days=(30,))
    registry = ModelRegistry(project / "models")
    with threadpool_limits(1, user_api="openmp"):
        result = simulate(work / "sim", n_accounts=accounts, seed=1, events_per_account=30)
        end = str(result.observation_end)
        with connect(f"duckdb:///{work / 'train.duckdb'}") as warehouse:
            ingest(
                Settings(sources=preset_sources("churnwatch_simulator", result.out_dir)),
                warehouse,
                now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            )
            schedule = training_schedule(warehouse, churn, every_days=30, observation_end=end)
            frame = training_frame(warehouse, [churn], schedule, observation_end=end)
            if model is None:
                register_model(frame, TARGET, registry, search_iterations=0, promote=True)
            else:
                shutil.copytree(model, project / "models", dirs_exist_ok=True)
            cutoff = data_end(warehouse)
            run = score_accounts(warehouse, registry, as_of=cutoff, write=False)
            found = registry.load(TARGET)
            specs = [FeatureSpec.from_dict(s) for s in found.card.feature_specs or []]
            ids = run.scores["account_id"].astype(str).tolist()
            cutoffs = pa.table(
                {
                    "account_id": pa.array(ids, pa.string()),
                    "cutoff": pa.array([cutoff] * len(ids), pa.timestamp("us", tz="UTC")),
                }
            )
            features = compute_features(warehouse, cutoffs, specs).drop_columns(["cutoff"])
    scores = pa.Table.from_pandas(run.scores, preserve_index=False)
    return features.sort_by("account_id"), scores.sort_by("account_id")


def synthesize(project: Path, seed_features: pa.Table, seed_scores: pa.Table, n: int) -> None:
    """Write a read model of ``n`` accounts whose features are copies of seed rows."""
    from churnwatch.views import write_generation

    rng = np.random.default_rng(7)
    pick = pa.array(rng.integers(0, seed_features.num_rows, size=n))
    ids = pa.array([f"acc_{i:07d}" for i in range(n)], pa.string())
    features = seed_features.take(pick).set_column(0, "account_id", ids)
    scores = seed_scores.take(pick)
    risk = scores.column("score").to_numpy()
    mrr = scores.column("mrr").to_numpy(zero_copy_only=False)
    scored_at = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
    accounts = pa.table(
        {
            "account_id": ids,
            "name": pa.array([f"Account {i}" for i in range(n)]),
            "plan": pa.array(rng.choice(["basic", "pro", "enterprise"], size=n)),
            "region": pa.array(rng.choice(["EMEA", "NA", "LATAM", "APAC"], size=n)),
            "platform": pa.array(rng.choice(["web", "ios", "android"], size=n)),
            "csm_id": pa.array(rng.choice([f"csm_{i}" for i in range(40)], size=n)),
            "created_at": pa.array(
                [scored_at - dt.timedelta(days=int(d)) for d in rng.integers(30, 900, size=n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "status": pa.array(["active"] * n),
            "mrr": mrr,
            "churn_risk": risk,
            "risk_tier": scores.column("risk_tier"),
            "revenue_at_risk": scores.column("revenue_at_risk"),
            "reason_1": scores.column("reason_1"),
            "reason_2": scores.column("reason_2"),
            "reason_3": scores.column("reason_3"),
            "predicted_days_to_churn": scores.column("predicted_days_to_churn"),
            "health_score": np.round(100 * (1 - risk), 1),
            "health_band": pa.array(np.where(risk > 0.3, "poor", "good")),
            "segment": pa.array(rng.choice(["power", "casual", "dormant"], size=n)),
            "tracker_state": pa.array(["active"] * n),
            "scored_at": pa.array([scored_at] * n, pa.timestamp("us", tz="UTC")),
        }
    ).sort_by([("churn_risk", "descending"), ("account_id", "ascending")])
    months = 3
    history = pa.table(
        {
            "account_id": pa.array(np.repeat(np.asarray(ids.to_pylist(), dtype=object), months)),
            "scored_at": pa.array(
                [scored_at - dt.timedelta(days=30 * (months - 1 - m)) for m in range(months)] * n,
                pa.timestamp("us", tz="UTC"),
            ),
            "target": pa.array([TARGET] * (n * months)),
            "score": np.clip(
                np.repeat(risk, months) * rng.uniform(0.7, 1.3, size=n * months), 0, 1
            ),
        }
    )
    write_generation(
        project / "views",
        {"accounts": accounts, "features": features, "risk_history": history},
        {"project": "api-benchmark", "scored_at": scored_at.isoformat(), "accounts": n},
    )


def prepare(work: Path, accounts: int, train_accounts: int, model: Path | None = None) -> Path:
    """The benchmark project (reused when its read model has ``accounts`` accounts)."""
    from churnwatch.models import ModelRegistry
    from churnwatch.views import ViewsNotFoundError, current_generation

    project = work / (f"project_{accounts}" if model is None else f"project_{accounts}_copied")
    try:
        if current_generation(project / "views").meta.get("accounts") == accounts:
            return project
    except ViewsNotFoundError:
        pass
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    (project / "churnwatch.toml").write_text('[project]\nname = "api-benchmark"\n')
    began = time.perf_counter()
    features, scores = train(project, work / "train", train_accounts, model)
    how = "trained" if model is None else f"copied from {model}, seed rows scored"
    print(f"{TARGET} {how} on {train_accounts:,} accounts: {time.perf_counter() - began:.1f} s")
    estimator = ModelRegistry(project / "models").load(TARGET).model.estimator
    weight = getattr(estimator, "tree_weight", 1.0)
    print(f"model: {type(estimator).__name__}" + (f", trees weigh {weight}" if weight < 1 else ""))
    began = time.perf_counter()
    synthesize(project, features, scores, accounts)
    print(f"read model of {accounts:,} accounts written: {time.perf_counter() - began:.1f} s")
    return project


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(project: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``churnwatch serve`` in another process; return it and its URL once every worker is up."""
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "churnwatch"),
        "serve",
        "--project",
        str(project),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    output = log.open("wb")
    server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped:\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            server.terminate()
            raise SystemExit("the server did not start within 600 s")
        time.sleep(0.5)
    return server, f"http://127.0.0.1:{port}"


class Connection:
    """One keep-alive HTTP/1.1 connection of the load client.

    A minimal client on asyncio streams: it writes a request and reads the
    status line, the headers and a Content-Length body. An httpx
    AsyncClient spends 2 to 3 ms of CPU per request here, more than the
    server does, and client and server share the same two cores: a client
    that heavy measures itself.
    """

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host = host
        self.port = port
        self.key = key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request; return the status code and the body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"X-API-Key: {self.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.writer = None
            raise
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == "content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        """Close the connection."""
        if self.writer is not None:
            self.writer.close()


@dataclass
class Phase:
    """What one load phase measured."""

    name: str
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    events: int = 0
    mismatches: int = 0
    first_error: str | None = None
    client_cpu: float = 0.0

    def line(self) -> str:
        """The phase's figures in one line."""
        done = len(self.latencies_ms)
        ordered = sorted(self.latencies_ms) or [float("nan")]
        p50 = statistics.median(ordered)
        p90 = ordered[min(len(ordered) - 1, int(0.90 * len(ordered)))]
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        text = (
            f"{self.name:<26} {done / self.seconds:7.0f} req/s   p50 {p50:6.1f} ms   "
            f"p90 {p90:6.1f} ms   p99 {p99:6.1f} ms   max {ordered[-1]:6.0f} ms   "
            f"errors {self.errors}"
        )
        if self.events:
            text += f"   {self.events / self.seconds:,.0f} events/s"
        if self.name.startswith("POST /accounts"):
            text += f"   scores unlike the stored: {self.mismatches}"
        return text + f"   (load client: {self.client_cpu:.0%} of a core)"


Request = tuple[str, str, bytes]


async def run_phase(
    phase: Phase,
    address: tuple[str, int, str],
    make: Callable[[random.Random], Request],
    check: Callable[[Request, bytes, Phase], None],
    concurrency: int,
    duration: float,
) -> Phase:
    """Keep ``concurrency`` requests in flight (one connection each) for ``duration`` seconds."""
    stop = time.perf_counter() + duration

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        connection = Connection(*address)
        try:
            while time.perf_counter() < stop:
                request = make(rng)
                began = time.perf_counter()
                try:
                    status, body = await connection.request(*request)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    phase.errors += 1
                    phase.first_error = phase.first_error or repr(exc)
                    continue
                phase.latencies_ms.append((time.perf_counter() - began) * 1000)
                if status != 200:
                    phase.errors += 1
                    phase.first_error = phase.first_error or f"{status} {body[:300]!r}"
                    continue
                check(request, body, phase)
        finally:
            connection.close()

    began = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    phase.seconds = time.perf_counter() - began
    phase.client_cpu = (time.process_time() - cpu) / phase.seconds
    return phase


async def run_at_rate(
    phase: Phase,
    address: tuple[str, int, str],
    make: Callable[[random.Random], Request],
    check: Callable[[Request, bytes, Phase], None],
    rate: float,
    connections: int,
    duration: float,
) -> Phase:
    """Start requests at ``rate`` per second (open loop) over at most ``connections``.

    Each latency runs from the moment its request was due, not from when a
    connection was free: a server falling behind shows as latency, never as
    requests quietly not sent.
    """
    rng = random.Random(rate)
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    opened = [Connection(*address) for _ in range(connections)]
    for connection in opened:
        pool.put_nowait(connection)
    tasks: set[asyncio.Task[None]] = set()

    async def one(request: Request, due: float) -> None:
        connection = await pool.get()
        try:
            status, body = await connection.request(*request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            phase.errors += 1
            phase.first_error = phase.first_error or repr(exc)
            return
        finally:
            pool.put_nowait(connection)
        phase.latencies_ms.append((time.perf_counter() - due) * 1000)
        if status != 200:
            phase.errors += 1
            phase.first_error = phase.first_error or f"{status} {body[:300]!r}"
        else:
            check(request, body, phase)

    began = time.perf_counter()
    cpu = time.process_time()
    total = int(rate * duration)
    for number in range(total):
        due = began + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(make(rng), due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    phase.seconds = time.perf_counter() - began
    phase.client_cpu = (time.process_time() - cpu) / phase.seconds
    for connection in opened:
        connection.close()
    return phase


async def load(url: str, key: str, args: argparse.Namespace, risks: dict[str, float]) -> None:
    """Every phase, one after the other, printed as it ends."""
    ids = list(risks)
    host, port = url.removeprefix("http://").split(":")
    address = (host, int(port), key)

    def read(rng: random.Random) -> Request:
        return ("GET", f"/accounts/{rng.choice(ids)}", b"")

    def score(rng: random.Random) -> Request:
        return ("POST", f"/accounts/{rng.choice(ids)}/score", b"")

    counter = iter(range(10**12))
    start = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)

    def ingest(rng: random.Random) -> Request:
        batch = []
        for _ in range(args.batch):
            number = next(counter)
            when = start + dt.timedelta(seconds=number % 2_000_000)
            batch.append(
                {
                    "event_id": f"bench-{os.getpid()}-{number}",
                    "account_id": rng.choice(ids),
                    "event_time": when.isoformat(),
                    "event_type": rng.choice(["login", "session", "feature_use"]),
                    "duration_s": float(rng.randint(1, 3600)),
                }
            )
        return ("POST", "/events", json.dumps({"events": batch}).encode())

    def no_check(request: Request, body: bytes, phase: Phase) -> None:
        del request, body, phase

    def same_score(request: Request, body: bytes, phase: Phase) -> None:
        answer = json.loads(body)
        if abs(answer["score"] - risks[answer["account_id"]]) > 1e-9:
            phase.mismatches += 1

    def counted(request: Request, body: bytes, phase: Phase) -> None:
        answer = json.loads(body)
        phase.events += answer["accepted"]
        if answer["accepted"] != args.batch:
            phase.errors += 1

    # A short warm-up: connections opened, first requests through each worker.
    await run_phase(Phase("warm-up"), address, read, no_check, args.concurrency, 2.0)
    phases = {
        "read": ("GET /accounts/{id}", read, no_check, args.concurrency),
        "score": ("POST /accounts/{id}/score", score, same_score, args.concurrency),
        "ingest": ("POST /events", ingest, counted, args.ingest_concurrency),
    }
    wanted = args.phases.split(",")
    print(f"closed loop: {args.concurrency} requests in flight (ingest: {args.ingest_concurrency})")
    for key in ("read", "score", "ingest"):
        if key not in wanted:
            continue
        name, make, check, concurrency = phases[key]
        phase = await run_phase(Phase(name), address, make, check, concurrency, args.duration)
        print(phase.line(), flush=True)
        if phase.first_error:
            print(f"  first error: {phase.first_error[:300]}")
    print(
        f"open loop: {args.rate:.0f} requests/s offered over up to {args.connections} connections"
    )
    for key in ("read", "score"):
        if f"{key}-at-rate" not in wanted:
            continue
        name, make, check, _ = phases[key]
        phase = await run_at_rate(
            Phase(name), address, make, check, args.rate, args.connections, args.duration
        )
        print(phase.line(), flush=True)
        if phase.first_error:
            print(f"  first error: {phase.first_error[:300]}")


def main() -> None:
    """Parse the arguments, prepare, serve, load, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--train-accounts", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ingest-concurrency", type=int, default=8)
    parser.add_argument(
        "--rate", type=float, default=600.0, help="Requests/s offered in the open-loop phases."
    )
    parser.add_argument(
        "--connections", type=int, default=64, help="Connections of the open-loop phases."
    )
    parser.add_argument(
        "--phases",
        default="read,score,ingest,read-at-rate,score-at-rate",
        help="Which phases run, in this order whatever the order given.",
    )
    parser.add_argument("--batch", type=int, default=500, help="Events per POST /events.")
    parser.add_argument("--duration", type=float, default=15.0, help="Seconds per phase.")
    parser.add_argument("--work-dir", type=Path, default=None, help="Kept between runs.")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="A model registry whose promoted churn_30d model is served (default: train "
        "the trees alone).",
    )
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="churnwatch-api-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    project = prepare(work, args.accounts, args.train_accounts, args.model)

    from churnwatch.api import create_api_key
    from churnwatch.store import open_store
    from churnwatch.views import ReadModel

    store_file = project / "churnwatch_ops.sqlite"
    for stale in project.glob("churnwatch_ops.sqlite*"):
        stale.unlink()  # a fresh inbox: the ingest phase writes new events only
    with open_store(f"sqlite:///{store_file}") as store:
        key, _ = create_api_key(store, name="benchmark", scope="write")
    accounts = ReadModel(project / "views").table("accounts", ["account_id", "churn_risk"])
    risks = dict(
        zip(
            accounts.column("account_id").to_pylist(),
            accounts.column("churn_risk").to_pylist(),
            strict=True,
        )
    )
    began = time.perf_counter()
    server, url = start_server(project, args.workers, work / "server.log")
    print(
        f"serving {len(risks):,} accounts with {args.workers} worker(s) at {url} "
        f"(started and warmed in {time.perf_counter() - began:.1f} s); "
        f"concurrency {args.concurrency}, {args.duration:.0f} s per phase"
    )
    try:
        asyncio.run(load(url, key, args, risks))
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
