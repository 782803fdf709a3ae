"""The state of an entrega: the stored values, the transitions, and that nothing else writes it."""

from __future__ import annotations

import ast
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import EntregaSettings
from gateway.delivery import state
from gateway.delivery.state import NOT_SENT, State
from gateway.storage.models import ESTADOS_ENTREGA, Entrega

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
GATEWAY = Path(state.__file__).resolve().parent.parent
SETTINGS = EntregaSettings(tentativas=3, espera_inicial_s=2, espera_max_s=60)


def claimed(tentativas: int = 0) -> Entrega:
    entrega = Entrega(estado=State.PENDENTE, tentativas=tentativas, proxima_em=NOW)
    for column, value in state.claimed("worker-1", NOW + timedelta(seconds=30)).items():
        setattr(entrega, column, value)
    return entrega


def test_the_states_are_the_stored_values() -> None:
    assert tuple(State) == ESTADOS_ENTREGA  # the estado check constraint's list
    assert [s.value for s in State] == ["pendente", "enviando", "entregue", "recusada", "morta"]
    assert NOT_SENT == ("pendente", "enviando")


def test_a_state_is_its_stored_string_in_comparisons_and_lookups() -> None:
    read_back = "morta"  # what the database gives
    assert read_back == State.MORTA and read_back in (State.MORTA,)
    assert Counter({"morta": 2}).get(State.MORTA) == 2
    assert {State.RECUSADA: 1}.get("recusada") == 1
    assert f"{State.ENTREGUE}" == str(State.ENTREGUE) == "entregue"


def test_bulk_transitions_give_the_columns_of_each_state() -> None:
    assert state.queued(NOW) == {"estado": "pendente", "proxima_em": NOW}
    lease = NOW + timedelta(seconds=30)
    assert state.claimed("w" * 150, lease) == {"estado": "enviando", "reservada_ate": lease,
                                               "reservada_por": "w" * 100}
    assert state.retried(NOW) == {"estado": "pendente", "tentativas": 0, "proxima_em": NOW,
                                  "reservada_ate": None, "reservada_por": None, "incerto": None}
    assert state.released() == {"estado": "pendente", "reservada_ate": None, "reservada_por": None}
    assert state.released("parou") == {"estado": "pendente", "reservada_ate": None, "reservada_por": None,
                                       "incerto": "parou"}


def test_the_lease_is_held_by_the_claiming_worker_only() -> None:
    entrega = Entrega()
    entrega.reservada_por = state.claimed("w" * 150, NOW)["reservada_por"]
    assert state.held_by(entrega, "w" * 150) and state.held_by(entrega, "w" * 100)
    assert not state.held_by(entrega, "other")


def test_delivered_counts_the_attempt_and_releases_the_lease() -> None:
    entrega = claimed(tentativas=1)
    state.delivered(entrega, NOW, "P123")
    assert (entrega.estado, entrega.tentativas, entrega.entregue_em, entrega.numero_protocolo) == \
        ("entregue", 2, NOW, "P123")
    assert entrega.reservada_ate is None and entrega.reservada_por is None


@pytest.mark.parametrize(("attempted", "tentativas"), [(True, 1), (False, 0)])
def test_refused_by_the_operator_or_by_its_adapter(attempted: bool, tentativas: int) -> None:
    entrega = claimed()
    state.refused(entrega, "x" * 5000, attempted=attempted)
    assert (entrega.estado, entrega.tentativas) == ("recusada", tentativas)
    assert entrega.ultimo_erro == "x" * 4000
    assert entrega.reservada_ate is None and entrega.reservada_por is None


def test_failed_backs_off_then_dies_at_the_last_attempt() -> None:
    entrega = claimed()
    state.failed(entrega, "HTTP 503", SETTINGS, NOW, random.Random(1))
    assert (entrega.estado, entrega.tentativas, entrega.ultimo_erro) == ("pendente", 1, "HTTP 503")
    assert NOW + timedelta(seconds=1) <= entrega.proxima_em <= NOW + timedelta(seconds=2)
    assert entrega.reservada_por is None
    entrega = claimed(tentativas=SETTINGS.tentativas - 1)
    state.failed(entrega, "HTTP 503", SETTINGS, NOW)
    assert (entrega.estado, entrega.tentativas, entrega.proxima_em) == ("morta", SETTINGS.tentativas, NOW)
    assert entrega.reservada_ate is None and entrega.reservada_por is None


def test_postponed_gives_it_back_without_an_attempt() -> None:
    entrega = claimed(tentativas=2)
    state.postponed(entrega, NOW, 90, "circuito aberto")
    assert (entrega.estado, entrega.tentativas, entrega.proxima_em, entrega.ultimo_erro) == \
        ("pendente", 2, NOW + timedelta(seconds=90), "circuito aberto")
    assert entrega.reservada_ate is None and entrega.reservada_por is None


def test_dead() -> None:
    entrega = claimed()
    state.dead(entrega)
    assert (entrega.estado, entrega.reservada_por) == ("morta", None)


def _writes_of_estado(tree: ast.AST) -> list[int]:
    """Lines assigning ``x.estado``, passing ``estado=`` or a ``{"estado": ...}`` to ``.values()``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple | ast.List) else [t])]
            found += [node.lineno for e in flat if isinstance(e, ast.Attribute) and e.attr == "estado"]
        elif isinstance(node, ast.Call):
            found += [node.lineno for k in node.keywords if k.arg == "estado"]
            if isinstance(node.func, ast.Attribute) and node.func.attr == "values":
                found += [node.lineno for a in node.args if isinstance(a, ast.Dict)
                          and any(isinstance(k, ast.Constant) and k.value == "estado" for k in a.keys)]
    return found


def test_nothing_but_the_state_module_writes_the_state() -> None:
    owner = {GATEWAY / "delivery" / "state.py", GATEWAY / "storage" / "models.py"}  # models: the column
    writes = {str(path.relative_to(GATEWAY)): lines for path in sorted(GATEWAY.rglob("*.py"))
              if path not in owner and "migrations" not in path.parts
              and (lines := _writes_of_estado(ast.parse(path.read_text(encoding="utf-8"))))}
    assert writes == {}
    assert _writes_of_estado(ast.parse((GATEWAY / "delivery" / "state.py").read_text(encoding="utf-8")))
