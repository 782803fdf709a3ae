"""Request-path statements compiled once per dialect and run on the driver's own cursor.

``Connection.execute`` spends ~30 µs of Python per statement (cache key, events, parameter and
result wrapping): more than SQLite takes to run a small statement, and the request path runs
about ten per message plus a hundred-row insert per lote. A :class:`Prepared` statement is a
Core statement compiled once per dialect (and set of insert columns) and executed on the DBAPI
cursor of the caller's connection, inside the caller's transaction, with the bind and result
processors of its own column types and the Python-side defaults of its columns: values are
written and read back exactly as through Core. Driver errors are raised as SQLAlchemy's
(``IntegrityError`` stays ``sqlalchemy.exc.IntegrityError``). Not done here, unlike Core: cursor
events (the project listens to none) and invalidating a connection on a disconnect (PostgreSQL
engines pre-ping at checkout, which finds a dead connection anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]
Db = Session | Connection  # what the request-path functions take: a Session or its Connection


def connection_of(db: Db) -> Connection:
    return db.connection() if isinstance(db, Session) else db


@dataclass
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # bind names in order (qmark drivers), None: by name
    construct: Callable[[Mapping[str, Any]], MutableMapping[str, Any]]
    processors: dict[str, Processor]
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # Python-side defaults not given
    results: list[tuple[int, Processor]] | None = None  # (column, processor): set at the first result

    def bind(self, params: Mapping[str, Any]) -> Any:
        values = self.construct(params)
        for name, default in self.defaults:
            values[name] = default()
        for name, process in self.processors.items():
            values[name] = process(values[name])
        if self.positional is None:
            return values
        return tuple(values[name] for name in self.positional)


class Prepared:
    """A Core statement (select, insert, update) for :func:`execute` / :func:`executemany`.

    For an insert, ``columns`` are the keys every execution gives (the statement is compiled
    for those; Python-side defaults of the other columns are computed per row, as Core does).
    """

    def __init__(self, statement: ClauseElement, columns: Sequence[str] | None = None):
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        key = f"{dialect.name}+{dialect.driver}"
        compiled = self._by_dialect.get(key)
        if compiled is None:
            compiled = self._by_dialect[key] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        # A Core statement compiles with the dialect's statement compiler, an SQLCompiler: its
        # attributes read below are not on the declared return type (Compiled).
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect, column_keys=self.columns))
        defaults = []
        prefetch = ((compiled.insert_prefetch, "default"), (compiled.update_prefetch, "onupdate"))
        for columns, attribute in prefetch:
            for column in columns:
                default = getattr(column, attribute)
                if default is None or not (default.is_callable or default.is_scalar):
                    raise ValueError(f"coluna {column} tem um default que este módulo não calcula")
                defaults.append((column.key, _default_function(default)))
        processors: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[compiled.escaped_bind_names.get(name, name)] = process
        positional: tuple[str, ...] | None = None
        if dialect.positional:
            if compiled.positiontup is None:  # set by every positional compilation
                raise ValueError(f"compilação posicional sem a ordem dos parâmetros: {compiled.string}")
            positional = tuple(compiled.positiontup)
        construct: Callable[[Mapping[str, Any]], MutableMapping[str, Any]] = compiled.construct_params
        if self.columns is not None and set(compiled.binds) == {*self.columns, *(n for n, _f in defaults)}:
            construct = dict  # an insert of exactly the given columns: the row is the parameters
        return _Compiled(compiled.string, positional, construct, processors, tuple(defaults))

    def execute(self, db: Db, params: Mapping[str, Any] | None = None) -> Any:
        """Run once; returns the DBAPI cursor (rows through :meth:`rows` / :meth:`first`)."""
        connection = connection_of(db)
        compiled = self._for(connection.dialect)
        values = compiled.bind(params or {})
        return _run(connection, compiled.sql, values, many=False)

    def executemany(self, db: Db, rows: Sequence[Mapping[str, Any]]) -> None:
        connection = connection_of(db)
        compiled = self._for(connection.dialect)
        _run(connection, compiled.sql, [compiled.bind(row) for row in rows], many=True)

    def rows(self, db: Db, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Every row of a select, through the result processors of its columns."""
        connection = connection_of(db)
        cursor = self.execute(connection, params)
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        return self._processed(connection.dialect, cursor.description, fetched)

    def first(self, db: Db, params: Mapping[str, Any] | None = None) -> tuple | None:
        rows = self.rows(db, params)
        return rows[0] if rows else None

    def scalar(self, db: Db, params: Mapping[str, Any] | None = None) -> Any:
        """The one value of an insert ... RETURNING id (an integer: no result processing)."""
        cursor = self.execute(db, params)
        try:
            return cursor.fetchone()[0]
        finally:
            cursor.close()

    def _processed(self, dialect: Dialect, description: Any, rows: list) -> list[tuple]:
        compiled = self._for(dialect)
        if compiled.results is None:
            columns = list(self.statement.selected_columns)  # type: ignore[attr-defined]
            processors = [column.type.dialect_impl(dialect).result_processor(dialect, entry[1])
                          for column, entry in zip(columns, description or (), strict=False)]
            compiled.results = [(i, process) for i, process in enumerate(processors) if process is not None]
        active = compiled.results
        if not active:
            return [tuple(row) for row in rows]
        processed = []
        for row in rows:
            values = list(row)
            for i, process in active:
                values[i] = process(values[i])
            processed.append(tuple(values))
        return processed


def _default_function(default: Any) -> Callable[[], Any]:
    if default.is_scalar:
        value = default.arg
        return lambda: value
    function = default.arg  # Core wraps a callable to take the execution context; none needs it here
    return lambda: function(None)


def _run(connection: Connection, sql: str, values: Any, *, many: bool) -> Any:
    dialect = connection.dialect
    cursor = connection.connection.cursor()
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except dialect.loaded_dbapi.Error as error:
        cursor.close()
        raise exc.DBAPIError.instance(sql, values, error, dialect.loaded_dbapi.Error,
                                      dialect=dialect) from error
    return cursor
