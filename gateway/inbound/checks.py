"""The gateway's checks of a request, in order, to one immutable result (a CheckedCall).

the message (:func:`gateway.message.checks.check_message`: service of the URL, Padrao, a version
the gateway has, schema, hash by the destination operator's policy) -> the sender (login, the
client certificate, the origem is the authenticated provider) -> the destination (an operator
served here, taking the message's version). Duplicates are found where the answer is stored
(:func:`gateway.delivery.checked.store_once`). Each step raises the TissFault to answer with.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from gateway import prestadores
from gateway.config import Config
from gateway.delivery.checked import CheckedCall
from gateway.inbound.client_cert import ClientCertificates
from gateway.inbound.logins import Identity, LoginCache
from gateway.message import hashing
from gateway.message.checks import Call, CheckedMessage, Endpoint, check_message
from gateway.message.faults import TissFault
from gateway.message.schema_registry import SchemaRegistry
from gateway.storage import auditoria
from gateway.tentativas import Limites

log = logging.getLogger("tiss_gateway.inbound")

# One answer for every failed login (unknown, wrong password, inactive, locked, address blocked):
# a different one would tell who exists or is locked. The audit row keeps the reason.
LOGIN_INVALIDO = "Login ou senha inválidos."


class Checks:
    def __init__(self, config: Config, registry: SchemaRegistry, sessions: sessionmaker[Session],
                 clock: Callable[[], datetime]):
        self.config = config
        self.registry = registry
        self.sessions = sessions  # the slow login path and the audit of a refused certificate
        self.clock = clock
        self.logins = LoginCache()
        self.limites = Limites.de(config.gateway)
        self.client_certs = ClientCertificates(config.gateway, config.prestadores)

    # -- the message ------------------------------------------------------------------------------
    def message(self, call: Call, endpoint: Endpoint) -> CheckedMessage:
        operadora = self.config.operadora(call.cabecalho.destino)
        return check_message(call, endpoint, registry=self.registry,
                             policy=operadora.hash_policy() if operadora else hashing.STRICT)

    # -- the sender -------------------------------------------------------------------------------
    def sender(self, call: Call, reading: Callable[[], Connection], environ: Mapping[str, Any]) -> int:
        """The authenticated provider's id; ``reading``: the request's read-only transaction
        (gateway.inbound.snapshot), ``environ``: the WSGI request (its client certificate)."""
        cabecalho = call.cabecalho
        login, senha = cabecalho.login, cabecalho.senha
        if not login or not senha:
            raise TissFault("LoginInvalido", "loginSenhaPrestador não informado.", code="5005")
        identity = self.logins.get(login, senha, call.endereco)
        if identity is None or not self._still_allowed(identity, login, call, reading):
            self.logins.forget(login, call.endereco)
            identity = self._check_login(call, login, senha)
        codigo = cabecalho.codigo
        same = (identity.documento in (cabecalho.cnpj, cabecalho.cpf)
                or (codigo and codigo == identity.codigos.get(cabecalho.destino)))
        if not same:
            raise TissFault("RemetenteInvalido", "A origem da mensagem não é o prestador "
                            "autenticado.", code="5005")
        refusal = self.client_certs.refusal(identity.documento, environ)
        if refusal is not None:  # every request: the certificate belongs to the connection
            self._refuse_certificate(call, login, refusal)
        return identity.prestador_id

    def _still_allowed(self, identity: Identity, login: str, call: Call,
                       reading: Callable[[], Connection]) -> bool:
        """A cached login is honoured only while the provider is active and neither the login from
        this address nor the address is locked (one indexed read, so a lock or a disable made by
        any worker applies at once)."""
        return prestadores.liberado(reading(), identity.prestador_id, login, call.endereco, self.clock())

    def _check_login(self, call: Call, login: str, senha: str) -> Identity:
        """The slow path: scrypt, failure counters per address, locks and audit (gateway.prestadores)."""
        # expire_on_commit off: authenticate commits before its scrypt and after, and the identity
        # is read from the provider it loaded, without another transaction.
        with self.sessions(expire_on_commit=False) as session:
            result = prestadores.authenticate(session, login, senha, now=self.clock(), limites=self.limites,
                                              endereco=call.endereco)
            prestador = result.prestador
            if not result.ok or prestador is None:
                raise TissFault("LoginInvalido", LOGIN_INVALIDO, code="5005")
            identity = Identity(prestador.id, prestador.documento,
                                {c.registro_ans: c.codigo_na_operadora for c in prestador.codigos})
        self.logins.remember(login, senha, identity, call.endereco)
        return identity

    def _refuse_certificate(self, call: Call, login: str, why: str) -> None:
        """A provider that requires a client certificate came without the right one: a failed login
        (audited like one; the password counter is left alone, the password was right)."""
        try:
            with self.sessions.begin() as session:
                auditoria.auditar(session, login, "certificado_recusado", why, call.endereco, self.clock())
        except Exception:  # the refusal must still reach the client
            log.exception("falha ao gravar a auditoria do certificado recusado")
        log.warning("certificado de cliente recusado: login %s de %s: %s", login, call.endereco, why)
        raise TissFault("LoginInvalido", "Certificado digital do cliente ausente ou não autorizado para "
                        "este prestador.", code="5005")

    # -- the destination --------------------------------------------------------------------------
    def destination(self, call: Call, message: CheckedMessage, prestador_id: int,
                    request_id: str | None) -> CheckedCall:
        destino = call.cabecalho.destino
        operadora = self.config.operadora(destino)
        if operadora is None:
            raise TissFault("DestinatarioInvalido", f"Registro ANS {destino} não é uma operadora atendida "
                            "por este gateway.", code="5027")
        if message.version not in operadora.versoes:
            raise TissFault("VersaoInvalida", f"A operadora {operadora.nome} não aceita a versão "
                            f"{message.version} (aceitas: {', '.join(operadora.versoes)}).", code="5028")
        return CheckedCall(call, operadora, prestador_id, message.hash_found, request_id)
