"""Column mappings compiled to one vectorised query per batch.

A source's mapping (see :class:`churnwatch.config.ColumnMapping`) becomes a
sqlglot ``SELECT`` over the batch that turns raw values into canonical typed
columns and, beside each, a *problem code* that is null when the value is fine:

``unparseable``      a value was given but does not read as the column's type
``missing_value``    a required column is empty
``negative``         below the column's minimum (durations, amounts)
``invalid_choice``   not one of the column's accepted values
``future``           the row's time lies past the load time
``end_before_start`` an end precedes its start (subscription periods)

The query runs on DuckDB whatever the warehouse is: the batch is an Arrow
table in memory, and DuckDB reads it without a copy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from sqlglot import exp

from churnwatch.config import ColumnMapping, SourceSpec
from churnwatch.errors import MappingError
from churnwatch.schema import TABLES, Column, ColumnType

__all__ = [
    "BAD_COLUMN",
    "BAD_REASON",
    "BATCH_VIEW",
    "INDEX_COLUMN",
    "ROW_NUMBER_COLUMN",
    "CompiledMapping",
    "compile_mapping",
]

#: Name under which a batch is visible to the query.
BATCH_VIEW = "_cw_batch"
#: Position of a row within its batch, added before the query runs.
INDEX_COLUMN = "_cw_idx"
#: The first column with a problem, and the problem, of each row.
BAD_COLUMN = "_bad_column"
BAD_REASON = "_bad_reason"
#: Number of the row among its file's data rows, added before the query runs.
ROW_NUMBER_COLUMN = "_cw_row_number"

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_OFFSET = r"(Z|z|[+-]\d\d(:?\d\d)?)$"
# A value of blanks alone is no value (TRIM alone would keep tabs and newlines).
_BLANKS = " \t\n\r\x0b\x0c"


@dataclass(frozen=True)
class CompiledMapping:
    """A mapping compiled against one batch schema.

    Attributes
    ----------
    query : sqlglot.exp.Select
        Selects ``_cw_idx``, each canonical column, ``_lookup_<column>`` keys
        for looked-up columns, one ``_why_<column>`` problem code per checked
        column and ``_cw_bad`` (any problem).
    columns : tuple of str
        Canonical columns the query fills (in table order).
    lookups : dict
        Canonical column -> (table, on, column) to fill in the warehouse.
    sources : dict
        Canonical column -> the source columns its value comes from.
    """

    query: exp.Select
    columns: tuple[str, ...]
    lookups: dict[str, tuple[str, str, str]]
    sources: dict[str, tuple[str, ...]]


def _ref(name: str) -> exp.Column:
    return exp.column(name, table=None, quoted=True)


def _text(node: exp.Expr, arrow_type: pa.DataType | None) -> exp.Expr:
    """Raw value as trimmed text, empty text being no value."""
    if arrow_type is not None and not (
        pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    ):
        node = exp.cast(node, "VARCHAR")
    trimmed = exp.Trim(this=node, expression=exp.Literal.string(_BLANKS))
    return exp.func("NULLIF", trimmed, exp.Literal.string(""))


def _given(node: exp.Expr, arrow_type: pa.DataType) -> exp.Expr:
    """Whether the source holds a value: non-blank text, or any typed value."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _text(node, arrow_type).is_(exp.null()).not_()
    # A typed value cannot be blank: no cast to text, which is costly.
    return node.is_(exp.null()).not_()


def _lit(value: str | float | bool) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Literal.string("true" if value else "false")
    return exp.Literal.string(str(value))


def _scaled(number: exp.Expr, scale: float) -> exp.Expr:
    # 1999 * 0.01 is 19.990000000000002 but 1999 / 100 is 19.99: a scale that
    # is the inverse of a whole number divides, so amounts stay as written.
    inverse = 1 / scale if scale else 0
    if inverse and abs(inverse - round(inverse)) < 1e-9:
        return exp.Div(this=number, expression=exp.Literal.number(round(inverse)))
    return exp.Mul(this=number, expression=exp.Literal.number(scale))


def _in(node: exp.Expr, values: tuple[str, ...]) -> exp.Expr:
    return exp.In(this=exp.func("LOWER", node), expressions=[exp.Literal.string(v) for v in values])


class _Compiler:
    def __init__(self, spec: SourceSpec, schema: pa.Schema, now: dt.datetime, tolerance_h: float):
        self.spec = spec
        self.table = TABLES[spec.table]
        self.types = {
            f.name: f.type for f in schema if f.name not in (INDEX_COLUMN, ROW_NUMBER_COLUMN)
        }
        self.now = now
        self.tolerance_h = tolerance_h
        self.used: set[str] = set()
        # Dotted paths into nested JSON that this batch happens not to hold.
        self.absent: list[str] = []

    # -- reading source columns ------------------------------------------------
    def source_column(self, name: str, target: str) -> exp.Expr:
        if name not in self.types and self.null_in_batch(name):
            self.types[name] = pa.string()
            self.absent.append(name)
        if name not in self.types:
            available = ", ".join(sorted(self.types)) or "(none)"
            raise MappingError(
                f"source {self.spec.name!r}: column {name!r} (mapped to {target}) is not in the "
                f"data; it has: {available}"
            )
        self.used.add(name)
        return _ref(name)

    def null_in_batch(self, name: str) -> bool:
        """Whether a dotted JSON path is merely empty in this batch, not misspelt.

        JSON sources are flattened per batch: an object that is null (or a key
        left out) in every row of a batch yields no ``a.b`` column there,
        while other batches of the same file have it. A path under an object
        the batch does hold reads as null instead of failing the whole file.
        """
        parts = name.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts))}
        return any(
            n in prefixes or any(n.startswith(p + ".") for p in prefixes)
            for n in self.types
            if n not in self.absent
        )

    def is_text(self, name: str) -> bool:
        arrow_type = self.types[name]
        return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))

    # -- typed values ------------------------------------------------------------
    def timestamp(
        self, node: exp.Expr, arrow_type: pa.DataType | None, mapping: ColumnMapping
    ) -> exp.Expr:
        zone = self.spec.timezone
        if mapping.transform in ("epoch_s", "epoch_ms", "epoch_us"):
            divisor = {"epoch_s": 1, "epoch_ms": 1_000, "epoch_us": 1_000_000}[mapping.transform]
            seconds = exp.Div(
                this=exp.TryCast(this=node, to=exp.DataType.build("DOUBLE")),
                expression=exp.Literal.number(divisor),
            )
            return exp.func("TO_TIMESTAMP", seconds)
        if arrow_type is not None and pa.types.is_timestamp(arrow_type):
            if arrow_type.tz is not None:
                return node
            return self.localize(node)
        if arrow_type is not None and pa.types.is_date(arrow_type):
            return self.localize(exp.cast(node, "TIMESTAMP"))
        if arrow_type is not None and (
            pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
        ):
            raise MappingError(
                f"source {self.spec.name!r}: a timestamp is mapped from a number column; "
                "set transform = 'epoch_s', 'epoch_ms' or 'epoch_us'"
            )
        text = _text(node, arrow_type) if arrow_type is not None else node
        if mapping.format:
            parsed = exp.func("TRY_STRPTIME", text, exp.Literal.string(mapping.format))
            if "%z" in mapping.format or "%Z" in mapping.format:
                return parsed
            return self.localize(parsed)
        if zone.upper() == "UTC":
            return exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMPTZ"))
        # Text that states its offset keeps it; naive text is local time.
        return exp.Case(
            ifs=[
                exp.If(
                    this=exp.func("REGEXP_MATCHES", text, exp.Literal.string(_OFFSET)),
                    true=exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMPTZ")),
                )
            ],
            default=self.localize(exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMP"))),
        )

    def localize(self, naive: exp.Expr) -> exp.Expr:
        if self.spec.timezone.upper() == "UTC":
            return exp.cast(naive, "TIMESTAMPTZ")
        return exp.func("TIMEZONE", exp.Literal.string(self.spec.timezone), naive)

    def typed(self, target: Column, mapping: ColumnMapping) -> tuple[exp.Expr, tuple[str, ...]]:
        """The typed value and the source columns it comes from."""
        if mapping.value is not None:
            node: exp.Expr = _lit(mapping.value)
            return self.cast(target, node, None, mapping), ()
        if mapping.json_columns is not None:
            names = (
                [n for n in self.types if n not in self.used]
                if mapping.json_columns == "*"
                else list(mapping.json_columns)
            )
            pairs: list[exp.Expr] = []
            for name in names:
                pairs += [exp.Literal.string(name), self.source_column(name, target.name)]
            return exp.func("JSON_OBJECT", *pairs), tuple(names)
        if mapping.seconds_between is not None:
            start_name, end_name = mapping.seconds_between
            start = self.timestamp(
                self.source_column(start_name, target.name), self.types[start_name], mapping
            )
            end = self.timestamp(
                self.source_column(end_name, target.name), self.types[end_name], mapping
            )
            seconds = exp.Sub(this=exp.func("EPOCH", end), expression=exp.func("EPOCH", start))
            return self.cast(target, seconds, pa.float64(), mapping), (start_name, end_name)
        if mapping.expr is not None:
            node, used = self.user_expression(mapping.expr, target.name)
            return self.cast(target, node, None, mapping), used
        assert mapping.source is not None
        node = self.source_column(mapping.source, target.name)
        arrow_type = self.types[mapping.source]
        return self.cast(target, node, arrow_type, mapping), (mapping.source,)

    def user_expression(self, text: str, target: str) -> tuple[exp.Expr, tuple[str, ...]]:
        try:
            tree = sqlglot.parse_one(text, read="duckdb")
        except sqlglot.errors.ParseError as exc:
            raise MappingError(
                f"source {self.spec.name!r}: expr for {target} is not SQL: {exc}"
            ) from None
        if tree.find(exp.Select, exp.Subquery, exp.Table, exp.Command) is not None:
            raise MappingError(
                f"source {self.spec.name!r}: expr for {target} may use columns, operators "
                "and functions, not queries"
            )
        names: list[str] = []
        for column in list(tree.find_all(exp.Column)):
            name = column.name
            clean = _text(self.source_column(name, target), self.types[name])
            # Text columns are cast to numbers where arithmetic needs them.
            if (
                self.is_text(name)
                and isinstance(column.parent, exp.Binary)
                and not isinstance(column.parent, exp.Predicate | exp.DPipe)
            ):
                clean = exp.TryCast(this=clean, to=exp.DataType.build("DOUBLE"))
            column.replace(clean)
            names.append(name)
        return tree, tuple(dict.fromkeys(names))

    def cast(
        self,
        target: Column,
        node: exp.Expr,
        arrow_type: pa.DataType | None,
        mapping: ColumnMapping,
    ) -> exp.Expr:
        kind: ColumnType = target.type
        is_text = (
            arrow_type is None
            or pa.types.is_string(arrow_type)
            or pa.types.is_large_string(arrow_type)
        )
        if mapping.values:
            text = _text(node, arrow_type)
            node = exp.Case(
                ifs=[
                    exp.If(this=text.eq(exp.Literal.string(k)), true=_lit(v))
                    for k, v in mapping.values.items()
                ],
                default=text,
            )
            arrow_type, is_text = None, True
        if kind == "timestamp":
            return self.timestamp(node, arrow_type, mapping)
        if kind == "date":
            if arrow_type is not None and (
                pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)
            ):
                return exp.cast(node, "DATE")
            text = _text(node, arrow_type) if arrow_type is not None else node
            if mapping.format:
                return exp.cast(
                    exp.func("TRY_STRPTIME", text, exp.Literal.string(mapping.format)), "DATE"
                )
            return exp.func(
                "COALESCE",
                exp.TryCast(this=text, to=exp.DataType.build("DATE")),
                exp.cast(exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMP")), "DATE"),
            )
        if kind == "boolean":
            if arrow_type is not None and pa.types.is_boolean(arrow_type):
                return node
            if arrow_type is not None and not is_text:
                return exp.NEQ(this=node, expression=exp.Literal.number(0))
            text = _text(node, arrow_type) if arrow_type is not None else node
            trues = tuple(v.lower() for v in (mapping.true_values or _TRUE))
            falses = tuple(v.lower() for v in (mapping.false_values or _FALSE))
            return exp.Case(
                ifs=[
                    exp.If(this=_in(text, trues), true=exp.true()),
                    exp.If(this=_in(text, falses), true=exp.false()),
                ]
            )
        if kind in ("double", "bigint"):
            value = (
                node
                if (arrow_type is not None and not is_text)
                else _text(node, arrow_type)
                if arrow_type is not None
                else node
            )
            number: exp.Expr = exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))
            # NaN and infinity are not amounts, and MySQL cannot store them:
            # they do not read as numbers on any engine.
            number = exp.Case(ifs=[exp.If(this=exp.func("ISFINITE", number), true=number.copy())])
            if mapping.scale is not None:
                number = _scaled(number, mapping.scale)
            if kind == "bigint":
                return exp.TryCast(this=exp.func("ROUND", number), to=exp.DataType.build("BIGINT"))
            return number
        if kind == "json":
            text = _text(node, arrow_type) if arrow_type is not None else node
            return exp.TryCast(this=text, to=exp.DataType.build("JSON"))
        # string
        text = _text(node, arrow_type) if arrow_type is not None else exp.cast(node, "VARCHAR")
        if mapping.transform == "lower" or target.choices:
            return exp.func("LOWER", text)
        if mapping.transform == "upper":
            return exp.func("UPPER", text)
        return text


def compile_mapping(
    spec: SourceSpec, schema: pa.Schema, *, now: dt.datetime, future_tolerance_hours: float
) -> CompiledMapping:
    """Compile a source's mapping against the schema of its batches.

    Parameters
    ----------
    spec : SourceSpec
        The source and its column mapping.
    schema : pyarrow.Schema
        Schema of the batches (source column names and types).
    now : datetime
        The load time; timestamps past ``now + future_tolerance_hours`` are
        rejected as in the future.
    future_tolerance_hours : float
        Allowance for clocks that disagree.

    Raises
    ------
    MappingError
        If a mapped source column is missing or a mapping cannot apply.
    """
    compiler = _Compiler(spec, schema, now, future_tolerance_hours)
    table = compiler.table
    selects: list[exp.Expr] = [_ref(INDEX_COLUMN), _ref(ROW_NUMBER_COLUMN)]
    problems: list[exp.Expr] = []
    lookups: dict[str, tuple[str, str, str]] = {}
    sources: dict[str, tuple[str, ...]] = {}
    columns: list[str] = []
    # json '*' gathers what nothing else uses, so it is compiled last.
    order = sorted(spec.columns, key=lambda c: spec.columns[c].json_columns == "*")
    typed_values: dict[str, exp.Expr] = {}
    for name in order:
        mapping = spec.columns[name]
        target = table.column(name)
        if mapping.lookup is not None:
            assert mapping.source is not None
            key = _text(
                compiler.source_column(mapping.source, name), compiler.types[mapping.source]
            )
            selects.append(exp.alias_(key, f"_lookup_{name}", quoted=True))
            lookups[name] = (mapping.lookup.table, mapping.lookup.on, mapping.lookup.column)
            sources[name] = (mapping.source,)
            columns.append(name)
            continue
        value, used = compiler.typed(target, mapping)
        typed_values[name] = value
        sources[name] = used
        columns.append(name)
    # Checks run in the table's column order: a row's first problem is the
    # one reported.
    for name in sorted(typed_values, key=table.column_names.index):
        value = typed_values[name]
        target = table.column(name)
        selects.append(exp.alias_(value, name, quoted=True))
        value_ref = _ref(name)
        checks: list[exp.If] = []
        mapping = spec.columns[name]
        checkable = (
            mapping.source is not None
            or mapping.expr is not None
            or mapping.seconds_between is not None
        )
        # Text read as text cannot fail to parse: only other types are checked.
        if checkable and not (target.type == "string" and mapping.expr is None):
            # Whether the source gave a value at all: computed beside the
            # typed value, where the source columns are still in scope.
            given = exp.and_(*[_given(_ref(n), compiler.types[n]) for n in sources[name]])
            selects.append(exp.alias_(given, f"_given_{name}", quoted=True))
            checks.append(
                exp.If(
                    this=exp.and_(_ref(f"_given_{name}"), value_ref.is_(exp.null())),
                    true=exp.Literal.string("unparseable"),
                )
            )
        if target.required:
            checks.append(
                exp.If(this=value_ref.is_(exp.null()), true=exp.Literal.string("missing_value"))
            )
        if target.minimum is not None:
            checks.append(
                exp.If(
                    this=value_ref < exp.Literal.number(target.minimum),
                    true=exp.Literal.string("negative"),
                )
            )
        if target.choices:
            checks.append(
                exp.If(
                    this=exp.In(
                        this=value_ref, expressions=[exp.Literal.string(c) for c in target.choices]
                    ).not_(),
                    true=exp.Literal.string("invalid_choice"),
                )
            )
        if name == table.time_column:
            limit = now + dt.timedelta(hours=future_tolerance_hours)
            limit_value: exp.Expr = exp.cast(exp.Literal.string(limit.isoformat()), "TIMESTAMPTZ")
            if target.type == "date":
                limit_value = exp.cast(exp.Literal.string(limit.date().isoformat()), "DATE")
            checks.append(exp.If(this=value_ref > limit_value, true=exp.Literal.string("future")))
        for start, end in table.ordered_pairs:
            if name == end and start in typed_values:
                checks.append(
                    exp.If(
                        this=value_ref < _ref(start), true=exp.Literal.string("end_before_start")
                    )
                )
        if checks:
            problems.append(exp.alias_(exp.Case(ifs=checks), f"_why_{name}", quoted=True))
    # Problem codes refer to typed columns by name, so they sit one level up.
    batch: exp.Expr = exp.to_table(BATCH_VIEW)
    if compiler.absent:
        nulls = [
            exp.alias_(exp.cast(exp.null(), "VARCHAR"), n, quoted=True) for n in compiler.absent
        ]
        batch = exp.select(exp.Star(), *nulls).from_(BATCH_VIEW).subquery(BATCH_VIEW)
    inner = exp.select(*selects).from_(batch)
    why = [p.alias for p in problems]
    bad = exp.or_(*[_ref(w).is_(exp.null()).not_() for w in why]) if why else exp.false()
    outer = exp.select(exp.Star(), *problems).from_(inner.subquery("_cw_typed"))
    first_column: exp.Expr = exp.null()
    first_reason: exp.Expr = exp.null()
    if why:
        first_column = exp.Case(
            ifs=[
                exp.If(
                    this=_ref(w).is_(exp.null()).not_(),
                    true=exp.Literal.string(w.removeprefix("_why_")),
                )
                for w in why
            ]
        )
        first_reason = (
            exp.func("COALESCE", *[_ref(w) for w in why]) if len(why) > 1 else _ref(why[0])
        )
    query = exp.select(
        exp.Star(),
        exp.alias_(bad, "_cw_bad"),
        exp.alias_(exp.cast(first_column, "VARCHAR"), BAD_COLUMN),
        exp.alias_(exp.cast(first_reason, "VARCHAR"), BAD_REASON),
    ).from_(outer.subquery("_cw_checked"))
    ordered = tuple(c for c in table.column_names if c in columns)
    return CompiledMapping(query=query, columns=ordered, lookups=lookups, sources=sources)
