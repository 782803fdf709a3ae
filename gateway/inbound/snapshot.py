"""The read-only transaction of one request: its checks and its reads, no write lock held."""

from sqlalchemy.engine import Connection, Engine


class Snapshot:
    """Opened on first use, on a plain connection (no Session machinery on every request); closed
    before the request writes or asks an operator (:meth:`close`), and in any case at its end.
    A status query reads its lote in the same transaction the login check used."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._connection: Connection | None = None

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()
