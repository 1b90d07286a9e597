"""Readers: files and databases as a stream of Arrow batches with row numbers.

Each reader yields :class:`Batch` objects in source order. A batch carries the
rows as read (text for CSV, typed values for Parquet and databases), the
1-based number of each row among the data rows of its file, and the rows that
could not even be split into fields (a CSV line with the wrong number of
fields, a JSON line that does not parse), so that those too reach quarantine.

Memory stays bounded: CSV, Parquet, JSONL and database results are streamed
``batch_rows`` at a time.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from churnwatch.config import SourceSpec
from churnwatch.errors import SourceError
from churnwatch.warehouse import normalize_url
from churnwatch.warehouse._base import driver_message, redact

__all__ = ["Batch", "Malformed", "SourceFile", "fingerprint", "list_files", "read_batches"]


@dataclass(frozen=True)
class Malformed:
    """A source row that could not be split into fields."""

    row_number: int
    text: str
    message: str


@dataclass
class Batch:
    """Rows read from one file, in order.

    Attributes
    ----------
    rows : pyarrow.Table
        The rows as read, one column per source column.
    row_numbers : numpy.ndarray
        1-based number of each row among the file's data rows.
    malformed : list of Malformed
        Rows in this stretch of the file that could not be read as fields.
    """

    rows: pa.Table
    row_numbers: np.ndarray
    malformed: list[Malformed] = field(default_factory=list)


@dataclass(frozen=True)
class SourceFile:
    """One readable unit of a source: a file, or a database query."""

    label: str
    path: Path | None
    format: str


_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def _format_of(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise SourceError(
        f"{path}: cannot tell the format from the name; set format = 'csv', 'parquet', "
        "'json', 'jsonl' or 'whitespace' on the source"
    )


def list_files(spec: SourceSpec, base_dir: Path) -> list[SourceFile]:
    """The files (or the one query) a source reads, in a stable order.

    Raises
    ------
    SourceError
        If a path or glob matches no file.
    """
    if spec.path is None:
        label = spec.sql_table or "query"
        return [SourceFile(label=f"{redact(spec.url or '')} {label}", path=None, format="sql")]
    pattern = spec.path if Path(spec.path).is_absolute() else str(base_dir / spec.path)
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    matches = [p for p in matches if p.is_file()]
    if not matches:
        raise SourceError(f"source {spec.name!r}: no file matches {pattern}")
    return [SourceFile(label=str(p), path=p, format=_format_of(p, spec.format)) for p in matches]


def fingerprint(path: Path) -> str:
    """SHA-256 of a file's content: the same data under another name is the same load."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def read_batches(spec: SourceSpec, source: SourceFile, batch_rows: int) -> Iterator[Batch]:
    """Stream a source file (or query) as batches.

    Raises
    ------
    SourceError
        If the file cannot be opened or is not of its format at all.
    """
    readers = {
        "csv": _read_csv,
        "parquet": _read_parquet,
        "json": _read_json,
        "jsonl": _read_jsonl,
        "whitespace": _read_whitespace,
        "sql": _read_sql,
    }
    try:
        yield from readers[source.format](spec, source, batch_rows)
    except (OSError, pa.ArrowException, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise SourceError(f"{source.label}: cannot read it as {source.format}: {exc}") from None


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _csv_header(path: Path, delimiter: str) -> list[str]:
    with _open_text(path) as handle:
        header = next(csv.reader(handle, delimiter=delimiter), None)
    if not header:
        raise SourceError(f"{path}: the file is empty; a header row naming the columns is expected")
    names = [name.strip() for name in header]
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        raise SourceError(f"{path}: the header names column(s) twice: {', '.join(doubles)}")
    if any(not n for n in names):
        raise SourceError(
            f"{path}: the header has an empty column name (column {names.index('') + 1})"
        )
    return names


class _RowNumbers:
    """Numbers the rows of a stream from which malformed rows were taken out.

    The CSV reader reports each malformed row's number as it parses and then
    yields the good rows without numbers; good rows are the numbers not taken
    by malformed ones, in order. Parsing runs ahead of yielding, never behind,
    so every malformed row before a batch's rows is known when it arrives.
    """

    def __init__(self) -> None:
        self.next_number = 1
        self.malformed: list[Malformed] = []
        self._skipped: set[int] = set()

    def skip(self, row: Malformed) -> None:
        self.malformed.append(row)
        self._skipped.add(row.row_number)

    def take(self, count: int) -> np.ndarray:
        if not self._skipped:
            numbers = np.arange(self.next_number, self.next_number + count, dtype=np.int64)
        else:
            span = np.arange(
                self.next_number, self.next_number + count + len(self._skipped), dtype=np.int64
            )
            numbers = span[~np.isin(span, np.fromiter(self._skipped, dtype=np.int64))][:count]
            last = int(numbers[-1]) if count else self.next_number - 1
            self._skipped = {n for n in self._skipped if n > last}
        if count:
            self.next_number = int(numbers[-1]) + 1
        return numbers

    def drain(self) -> list[Malformed]:
        rows, self.malformed = self.malformed, []
        return rows


def _read_csv(spec: SourceSpec, source: SourceFile, batch_rows: int) -> Iterator[Batch]:
    assert source.path is not None
    names = _csv_header(source.path, spec.delimiter)
    numbers = _RowNumbers()

    def on_invalid(row: Any) -> str:
        # pyarrow counts the header as row 1; ours count data rows from 1.
        number = (row.number - 1) if row.number is not None else numbers.next_number
        numbers.skip(
            Malformed(
                number,
                row.text,
                f"expected {row.expected_columns} fields, found {row.actual_columns}",
            )
        )
        return "skip"

    reader = pacsv.open_csv(
        source.path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 20),
        parse_options=pacsv.ParseOptions(
            delimiter=spec.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
        ),
        # Everything is read as text: parsing happens later, per column, so a
        # bad value rejects its row instead of failing the whole file.
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for record_batch in reader:
        pending.append(record_batch)
        pending_rows += record_batch.num_rows
        if pending_rows >= batch_rows:
            table = pa.Table.from_batches(pending)
            yield Batch(table, numbers.take(table.num_rows), numbers.drain())
            pending, pending_rows = [], 0
    table = pa.Table.from_batches(pending, schema=reader.schema)
    yield Batch(table, numbers.take(table.num_rows), numbers.drain())


def _read_parquet(spec: SourceSpec, source: SourceFile, batch_rows: int) -> Iterator[Batch]:
    assert source.path is not None
    parquet = pq.ParquetFile(source.path)
    first = 1
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([record_batch])
        yield Batch(table, np.arange(first, first + table.num_rows, dtype=np.int64))
        first += table.num_rows
    if first == 1:
        yield Batch(parquet.schema_arrow.empty_table(), np.arange(0, dtype=np.int64))


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted columns; lists and scalars stay values."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value, separators=(",", ":"))
        else:
            flat[name] = value
    return flat


def _records_to_batch(
    records: list[tuple[int, dict[str, Any]]], malformed: list[Malformed]
) -> Batch:
    flat = [_flatten(record) for _, record in records]
    names: dict[str, None] = {}
    for row in flat:
        names.update(dict.fromkeys(row))
    # JSON values of one key may differ in type between rows: keep them as
    # text (numbers and booleans as JSON spells them), parse per column later.
    columns = {
        name: pa.array([_json_text(row.get(name)) for row in flat], type=pa.string())
        for name in names
    }
    numbers = np.array([n for n, _ in records], dtype=np.int64)
    return Batch(pa.table(columns) if columns else pa.table({}).slice(0, 0), numbers, malformed)


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _read_jsonl(spec: SourceSpec, source: SourceFile, batch_rows: int) -> Iterator[Batch]:
    assert source.path is not None
    records: list[tuple[int, dict[str, Any]]] = []
    malformed: list[Malformed] = []
    number = 0
    with _open_text(source.path) as handle:
        for line in handle:
            if not line.strip():
                continue
            number += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                malformed.append(Malformed(number, line.rstrip("\n"), f"invalid JSON: {exc}"))
                continue
            if not isinstance(record, dict):
                malformed.append(Malformed(number, line.rstrip("\n"), "expected a JSON object"))
                continue
            records.append((number, record))
            if len(records) >= batch_rows:
                yield _records_to_batch(records, malformed)
                records, malformed = [], []
    yield _records_to_batch(records, malformed)


def _read_json(spec: SourceSpec, source: SourceFile, batch_rows: int) -> Iterator[Batch]:
    assert source.path is not None
    with _open_text(source.path) as handle:
        try:
            document = json.load(handle)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{source.label}: not valid JSON: {exc}") from None
    # An API list response ({"object": "list", "data": [...]}) holds its rows
    # under "data"; a plain export is an array.
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        raise SourceError(
            f"{source.label}: expected a JSON array of objects (or an object with a "
            "'data' array); for one object per line use format = 'jsonl'"
        )
    records: list[tuple[int, dict[str, Any]]] = []
    malformed: list[Malformed] = []
    for number, record in enumerate(document, start=1):
        if isinstance(record, dict):
            records.append((number, record))
        else:
            malformed.append(Malformed(number, json.dumps(record), "expected a JSON object"))
        if len(records) >= batch_rows:
            yield _records_to_batch(records, malformed)
            records, malformed = [], []
    yield _records_to_batch(records, malformed)


def _read_whitespace(spec: SourceSpec, source: SourceFile, batch_rows: int) -> Iterator[Batch]:
    """Columns separated by runs of blanks, as fixed-width text exports are."""
    assert source.path is not None
    with _open_text(source.path) as handle:
        header = handle.readline().split()
        if not header:
            raise SourceError(f"{source.label}: the file is empty; a header row is expected")
        rows: list[list[str]] = []
        numbers: list[int] = []
        malformed: list[Malformed] = []
        number = 0
        for line in handle:
            if not line.strip():
                continue
            number += 1
            fields = line.split()
            if len(fields) != len(header):
                malformed.append(
                    Malformed(
                        number,
                        line.rstrip("\n"),
                        f"expected {len(header)} fields, found {len(fields)}",
                    )
                )
                continue
            rows.append(fields)
            numbers.append(number)
            if len(rows) >= batch_rows:
                yield _text_batch(header, rows, numbers, malformed)
                rows, numbers, malformed = [], [], []
        yield _text_batch(header, rows, numbers, malformed)


def _text_batch(
    header: list[str], rows: list[list[str]], numbers: list[int], malformed: list[Malformed]
) -> Batch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    table = pa.table(
        {name: pa.array(col, type=pa.string()) for name, col in zip(header, columns, strict=True)}
    )
    return Batch(table, np.array(numbers, dtype=np.int64), malformed)


def _read_sql(spec: SourceSpec, source: SourceFile, batch_rows: int) -> Iterator[Batch]:
    assert spec.url is not None
    where = f"source {spec.name!r} ({redact(spec.url)})"
    try:
        url = sa.engine.make_url(normalize_url(spec.url))
        # A server that never answers must not hang the load.
        timeout = (
            {"connect_timeout": 10} if url.get_backend_name() in ("postgresql", "mysql") else {}
        )
        engine = sa.create_engine(url, connect_args=timeout)
    except (sa.exc.SQLAlchemyError, ValueError) as exc:
        raise SourceError(f"{where}: not a usable database URL: {driver_message(exc)}") from None
    try:
        connection = engine.connect()
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise SourceError(
            f"{where}: cannot connect: {driver_message(exc)}; check that the server is running "
            "and the URL's host, port, user, password and database"
        ) from None
    try:
        # Never committed: whatever the query does, the source stays as it was.
        with connection:
            streamed = connection.execution_options(stream_results=True)
            if spec.query is not None:
                # Sent as written: neither ':name' nor '%' in it is a placeholder.
                result = streamed.execution_options(no_parameters=True).exec_driver_sql(spec.query)
            else:
                assert spec.sql_table is not None
                schema, _, name = spec.sql_table.rpartition(".")
                try:
                    table = sa.Table(
                        name, sa.MetaData(), schema=schema or None, autoload_with=connection
                    )
                except sa.exc.NoSuchTableError:
                    raise SourceError(
                        f"{where}: the database has no table {spec.sql_table!r}; check "
                        "sql_table (use schema.table for a table outside the default schema)"
                    ) from None
                result = streamed.execute(sa.select(table))
            names = list(result.keys())
            first = 1
            for chunk in result.partitions(batch_rows):
                columns = list(zip(*chunk, strict=True))
                table_ = pa.table(
                    {n: pa.array(_sql_values(c)) for n, c in zip(names, columns, strict=True)}
                )
                yield Batch(table_, np.arange(first, first + len(chunk), dtype=np.int64))
                first += len(chunk)
            if first == 1:
                yield Batch(
                    pa.table({n: pa.array([], type=pa.string()) for n in names}),
                    np.arange(0, dtype=np.int64),
                )
    except sa.exc.SQLAlchemyError as exc:
        what = "the query failed" if spec.query is not None else "cannot read the table"
        raise SourceError(f"{where}: {what}: {driver_message(exc)}") from None
    finally:
        # Pooled connections closed now, not whenever the engine is collected.
        engine.dispose()


def _sql_values(column: tuple[Any, ...]) -> list[Any]:
    # Decimals become floats (amounts), so one Arrow type holds the column;
    # JSON that the driver parsed (Postgres json/jsonb) goes back to JSON text;
    # other driver objects (UUID, interval, ...) are read as their text.
    from decimal import Decimal

    values: list[Any] = []
    for value in column:
        if isinstance(value, Decimal):
            value = float(value)
        elif isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        elif value is not None and not isinstance(
            value, str | int | float | bool | bytes | dt.date | dt.time
        ):
            value = str(value)
        values.append(value)
    return values
