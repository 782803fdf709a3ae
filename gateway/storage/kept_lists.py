"""The guide list of a lote's situação answer, kept once per state of its protocol, and the answers
stored without it.

A situacaoProtocoloWS of a 100-guide lote is ~51 KB, nearly all of it the guide list, and the list
changes only with what it is rendered from: every writer of that (a guide's situação, a part's
situação answer from the operator) bumps ``protocolo.versao`` in its own transaction
(:func:`gateway.storage.rows.bump_versao`). So the list (and the lote's values, which add up the
same) is rendered once per (protocolo, versao, Padrao) and kept in ``guias_da_situacao``; the rest
of an answer (the status above all) is read with ``versao`` in one indexed row on every query.
Each answer is stored as its frame: ``mensagem.corpo`` holds the answer with the list's place
marked (:data:`MARK`), and a ``resposta_situacao`` row names the list and the encoding the answer
was written in.
:func:`stored_answer` (and :func:`gateway.storage.rows.transacao_anterior` for a replay) put the
answer back together byte for byte.

:class:`KeptListCache` keeps the lists a process used last: a key's list never changes (a new state
is a new key), so a hit needs no check beyond reading the protocol's ``versao``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Generic, NamedTuple, Protocol, TypeVar

from sqlalchemy import bindparam, select

from gateway.message.responses import ValorTotal
from gateway.message.services import ANS_NS
from gateway.storage.models import GUIAS_DA_SITUACAO_TABLE, MENSAGEM_TABLE, RESPOSTA_SITUACAO_TABLE
from gateway.storage.prepared import Db, Prepared

# The element that stands for the list while an answer is built (its text: the list's leaf values,
# so that the TISS hash reads them where the list goes), and what stands for it in a stored frame.
# No ANS element starts with "_", and the text of an answer cannot hold a "<": MARK is unambiguous.
MARK_TAG = f"{{{ANS_NS}}}_guias"
MARK = b"<ans:_guias/>"
_OPEN, _CLOSE = b"<ans:_guias>", b"</ans:_guias>"
MAX_CACHED_BYTES = 32 * 1024 * 1024  # per process: ~500 lists of 100 guides


class ListKey(NamedTuple):
    protocolo_id: int
    versao: int  # protocolo.versao: the protocol's state
    padrao: str  # the TISS version the list was written for


@dataclass(frozen=True, slots=True)
class KeptList:
    """A rendered guide list: what goes inside ``guiasTISS``, and what the answer says with it."""

    key: ListKey
    lista: str  # the guides as XML text (``ans:`` prefixed, escaped)
    folhas: str  # their leaf values in document order, joined: what the TISS hash reads of them
    valor_total: ValorTotal  # valorTotalLote in that state
    id: int | None = None  # its guias_da_situacao row, once stored

    def same_content(self, other: KeptList) -> bool:
        return (self.lista, self.folhas, self.valor_total) == (other.lista, other.folhas, other.valor_total)

    @property
    def size(self) -> int:
        return len(self.lista) + len(self.folhas)


class Sized(Protocol):
    @property
    def size(self) -> int: ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Sized)


class SizedLRU(Generic[K, V]):
    """The entries this process used last (least recently used dropped first), bounded by their
    total ``size``. Thread-safe: gunicorn's threaded workers share one."""

    def __init__(self, max_bytes: int = MAX_CACHED_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        if value.size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes += value.size - (old.size if old is not None else 0)
            self._entries[key] = value
            while self._bytes > self.max_bytes:
                _key, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size


class KeptListCache(SizedLRU[ListKey, KeptList]):
    """The guide lists this process used last."""

    def keep(self, kept: KeptList) -> None:
        """Only a stored list (with its id): answers reference it by id."""
        if kept.id is not None:
            self.put(kept.key, kept)


# --- rows ------------------------------------------------------------------------------------------

_K, _R, _M = GUIAS_DA_SITUACAO_TABLE, RESPOSTA_SITUACAO_TABLE, MENSAGEM_TABLE
_FIND = Prepared(select(_K.c.id, _K.c.lista, _K.c.folhas, _K.c.valor_processado, _K.c.valor_glosa,
                        _K.c.valor_liberado)
                 .where(_K.c.protocolo_id == bindparam("protocolo_id"), _K.c.versao == bindparam("versao"),
                        _K.c.padrao == bindparam("padrao")))
_INSERT = Prepared(_K.insert().returning(_K.c.id), ("protocolo_id", "versao", "padrao", "lista", "folhas",
                                                    "valor_processado", "valor_glosa", "valor_liberado"))
_LINK = Prepared(_R.insert(), ("mensagem_id", "guias_id", "codificacao"))
_STORED = Prepared(select(_M.c.corpo, _K.c.lista, _R.c.codificacao)
                   .select_from(_M.outerjoin(_R, _R.c.mensagem_id == _M.c.id)
                                .outerjoin(_K, _K.c.id == _R.c.guias_id))
                   .where(_M.c.id == bindparam("mensagem_id")))


def find(db: Db, key: ListKey) -> KeptList | None:
    row = _FIND.first(db, key._asdict())
    if row is None:
        return None
    kept_id, lista, folhas, processado, glosa, liberado = row
    return KeptList(key, lista, folhas, ValorTotal(Decimal(processado), Decimal(glosa), Decimal(liberado)),
                    kept_id)


def keep(db: Db, kept: KeptList) -> KeptList:
    """The stored list of ``kept``'s key: the one already there (another request, process or host
    may have rendered it first: its content is what answers reference), else ``kept``, inserted.
    Two transactions inserting one key at once: the unique key refuses the second (IntegrityError),
    whose retry finds the first's."""
    if kept.id is not None:
        return kept
    found = find(db, kept.key)
    if found is not None:
        return found
    valor = kept.valor_total
    kept_id = _INSERT.scalar(db, dict(kept.key._asdict(), lista=kept.lista, folhas=kept.folhas,
                                      valor_processado=valor.processado, valor_glosa=valor.glosa,
                                      valor_liberado=valor.liberado))
    return replace(kept, id=kept_id)


def link(db: Db, mensagem_id: int, kept: KeptList, encoding: str) -> None:
    """The answer ``mensagem_id`` was stored without the list ``kept``, written in ``encoding``."""
    if kept.id is None:
        raise ValueError("lista de guias ainda não gravada")
    _LINK.execute(db, {"mensagem_id": mensagem_id, "guias_id": kept.id, "codificacao": encoding}).close()


def stored_answer(db: Db, mensagem_id: int) -> bytes | None:
    """A stored message's bytes as they were sent: a situação answer with its guide list put back.
    The one way to read a ``mensagem.corpo`` that may be such an answer (console, downloads)."""
    row = _STORED.first(db, {"mensagem_id": mensagem_id})
    if row is None:
        return None
    corpo, lista, encoding = row
    return whole(corpo, lista, encoding)


# --- bytes -----------------------------------------------------------------------------------------


def split(data: bytes, lista: str, encoding: str) -> tuple[bytes, bytes]:
    """(the answer, the frame to store) from ``data``: an answer written with the MARK_TAG element
    (holding the list's leaf values) where the list goes."""
    start = data.find(_OPEN)
    end = data.find(_CLOSE, start)
    if start < 0 or end < 0 or data.find(_OPEN, end) >= 0:
        raise ValueError("resposta sem o lugar da lista de guias")
    head, tail = data[:start], data[end + len(_CLOSE):]
    return head + lista.encode(encoding, "xmlcharrefreplace") + tail, head + MARK + tail


def whole(corpo: bytes | None, lista: str | None, encoding: str | None) -> bytes | None:
    """A stored body as sent: ``corpo`` with ``lista`` in its MARK (as it is when it has no list, or
    was emptied by retention)."""
    if not corpo or lista is None or encoding is None:
        return corpo
    head, mark, tail = corpo.partition(MARK)
    if not mark or MARK in tail:
        raise ValueError("resposta gravada sem o lugar da lista de guias")
    return head + lista.encode(encoding, "xmlcharrefreplace") + tail
