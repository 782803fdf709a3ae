"""The simulated operators over HTTP, as a provider's zeep client sees them.

One real ``tiss-gateway simulate --all`` process for the module (clock frozen at a fixed start and
moved only by the admin API); every TISS call goes through a zeep client built from the operator's
served WSDL (cached per operator, service and version). zeep re-serialises what it sends, in
UTF-8: messages are built in UTF-8 so that their hash survives, and edits are made either on the
factory's bytes before zeep parses them or in an egress plugin that re-stamps the hash.

1. Every rule of each profile (simulator/profiles/*.toml, simulator/rules.py): versions, hash
   variants, size limit, guides per lote, one guide type, the sender, Unimed's SP/SADT
   executante, CASSEMS' dental-only and complete guides, IPASGO's honorários matrícula with
   partial sending, and every profile's card and authorisation rules.
2. The status walk with the clock: each profile's [[status]] flow step by step, and the
   total-glosa ending.
3. The demonstrativos' totals: análise and pagamento add up over items, guides and protocols,
   match the lote sent minus the glosas the operator reports, and the payment is the análise's
   liberado (CASSEMS: its dental payment demonstrativo).
4. Signatures (IPASGO): signed in a zeep egress plugin with a certificate of the sandbox CA,
   accepted, and refused when absent, from another CA, expired or tampered with; the answers'
   signature verifies against the CA the simulator serves.

Fault modes over HTTP are in tests/process/test_simulator_faults.py.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport

from gateway.message import hashing
from gateway.message.services import ANS_NS, SERVICE_BY_REQUEST, SOAP11_NS
from gateway.security import pki, xmldsig
from simulator import lifecycle
from simulator.profile import PROFILE_KEYS, Profile, load_profile
from tests.factory import Party, build_lote, build_request, glosas_drawn, numero_guia_prestador
from tests.simulator_process import SimulatorProcess

NS = {"ans": ANS_NS}
A = f"{{{ANS_NS}}}"
V402, V403 = "4.02.00", "4.03.00"
SEED = 7
START = "2026-02-02T09:00:00"  # Brasília; a fixed start keeps dates and competências deterministic
PROFILES: dict[str, Profile] = {key: load_profile(key) for key in PROFILE_KEYS}
# A guide type each operator takes without a crítica (CASSEMS: dental only; IPASGO's honorários
# need a matrícula, see test_ipasgo_refuses_honorarios_one_by_one).
GUIA = {"capitalprev": "sp-sadt", "pasa": "sp-sadt", "unimed": "sp-sadt", "cassems": "odonto",
        "ipasgo": "consulta"}
CLINICA = "11222333000181"  # the demo provider at every operator
OUTRA_CLINICA = "11444777000161"
MiB = 1024 * 1024

_ids = itertools.count(1)


def new_id() -> str:
    """A numeroLote / sequencialTransacao not used before in this module."""
    return str(next(_ids))


# --- zeep plugins ---------------------------------------------------------------------------------


def ws_of(envelope: etree._Element) -> etree._Element:
    """The *WS element in a SOAP envelope."""
    return envelope.find(f"{{{SOAP11_NS}}}Body")[0]


def stamp(ws: etree._Element, variant: str = hashing.DECLARED) -> None:
    """Re-stamp the hash of ``ws`` as zeep sends it (UTF-8)."""
    hashing.hash_element(ws).text = hashing.compute(ws, "UTF-8", variant)


class Edit(zeep.Plugin):
    """Change the *WS element zeep is about to send, then re-stamp its hash unless ``restamp`` is
    False (a change the hash does not cover: the operator sees a wrong hash)."""

    def __init__(self, change: Callable[[etree._Element], None], *, restamp: bool = True):
        self.change = change
        self.restamp = restamp

    def egress(self, envelope, http_headers, operation, binding_options):
        ws = ws_of(envelope)
        self.change(ws)
        if self.restamp:
            stamp(ws)
        return envelope, http_headers


class Sign(zeep.Plugin):
    """Sign the *WS element zeep is about to send with ``leaf``: re-stamp the hash (the signature
    covers it), then the enveloped XMLDSig. ``restamp=False`` keeps the hash the message has."""

    def __init__(self, leaf: pki.Leaf, *, restamp: bool = True):
        self.leaf = leaf
        self.restamp = restamp

    def egress(self, envelope, http_headers, operation, binding_options):
        ws = ws_of(envelope)
        if self.restamp:
            stamp(ws)
        xmldsig.sign(ws, self.leaf.key_pem, self.leaf.chain_pem)
        return envelope, http_headers


class Pad(zeep.Plugin):
    """A SOAP Header making the request ``size`` bytes bigger (the *WS element is untouched)."""

    def __init__(self, size: int):
        self.size = size

    def egress(self, envelope, http_headers, operation, binding_options):
        header = envelope.find(f"{{{SOAP11_NS}}}Header")
        if header is None:
            header = etree.Element(f"{{{SOAP11_NS}}}Header")
            envelope.insert(0, header)
        etree.SubElement(header, "{urn:teste:enchimento}enchimento").text = "x" * self.size
        return envelope, http_headers


# --- the operators as a provider sees them -----------------------------------------------------------


class Operadora:
    """One simulated operator: its profile, the demo provider's credentials, zeep clients built
    from its served WSDLs (one per service and version), and the last answer received."""

    def __init__(self, sim: SimulatorProcess, key: str, leaf: pki.Leaf):
        self.sim = sim
        self.key = key
        self.profile = PROFILES[key]
        self.leaf = leaf  # the provider's certificate, issued by the sandbox CA
        prestador = self.profile.prestadores[0]
        assert prestador.documento == CLINICA
        self.prestador = prestador
        self.party = Party(cnpj=prestador.documento, login=prestador.login, senha=prestador.senha,
                           registro_ans=self.profile.registro_ans)
        self.history = HistoryPlugin()
        self._clients: dict[tuple[str, str], zeep.Client] = {}

    def client(self, service: str, version: str = V403) -> zeep.Client:
        if (service, version) not in self._clients:
            self._clients[service, version] = zeep.Client(
                self.sim.wsdl_url(self.key, service, version),
                transport=Transport(timeout=60, operation_timeout=120))
        return self._clients[service, version]

    def call(self, data: bytes, *edits: zeep.Plugin, sign: pki.Leaf | bool = True,
             after: tuple[zeep.Plugin, ...] = (), client: zeep.Client | None = None,
             address: str | None = None):
        """Send the factory message ``data`` through zeep; return zeep's answer (a tissFault
        raises zeep.exceptions.Fault).

        Egress plugins run in order: ``edits``, the signature (``sign``: True signs with the
        provider's certificate when the profile requires it, False never, a Leaf with that one),
        then ``after``. ``client``/``address``: another WSDL's client, pointed at this operator.
        """
        root = etree.fromstring(data)
        service = SERVICE_BY_REQUEST[etree.QName(root).localname]
        version = root.findtext(f"{A}cabecalho/{A}Padrao")
        if client is None:
            client = self.client(service.name, version)
        if sign is True:
            sign = self.leaf if self.profile.assinatura_exigida else False
        signing = [Sign(sign)] if sign else []
        client.plugins = [*edits, *signing, *after, self.history]
        value = client.get_element(f"{A}{service.request}").parse(root, client.wsdl.types)
        proxy = client.service
        if address is not None:
            (binding,) = client.wsdl.bindings
            proxy = client.create_service(binding, address)
        return getattr(proxy, service.operation)(**{name: value[name] for name in value})

    def refused(self, data: bytes, *edits: zeep.Plugin, **kwargs) -> tuple[str, str]:
        """(tissFault, faultstring) of a call the operator answers with a SOAP fault."""
        with pytest.raises(zeep.exceptions.Fault) as caught:
            self.call(data, *edits, **kwargs)
        fault = caught.value
        assert fault.detail is not None, fault.message
        (tiss_fault,) = fault.detail.xpath("ans:tissFaultWS/ans:tissFault/text()", namespaces=NS)
        return tiss_fault, fault.message

    def answer(self) -> etree._Element:
        """The *WS element of the last answer, as received."""
        return ws_of(self.history.last_received["envelope"])

    # -- messages ------------------------------------------------------------------------------------
    def lote(self, n: int = 2, guide_type: str | None = None, *, numero_lote: str | None = None,
             party: Party | None = None, **kwargs) -> bytes:
        return build_lote(guide_type or GUIA[self.key], n, encoding="UTF-8",
                          numero_lote=numero_lote or new_id(), sequencial=new_id(),
                          party=party or self.party, seed=SEED, **kwargs)

    def request(self, kind: str, *, party: Party | None = None, **fields) -> bytes:
        return build_request(kind, encoding="UTF-8", sequencial=new_id(), party=party or self.party,
                             **fields)

    # -- common calls ----------------------------------------------------------------------------------
    def send_lote(self, data: bytes, *edits: zeep.Plugin, **kwargs):
        """The protocoloRecebimento of a lote the operator must accept."""
        result = self.call(data, *edits, **kwargs)
        assert result.recebimentoLote.mensagemErro is None, result.recebimentoLote.mensagemErro
        return result.recebimentoLote.protocoloRecebimento

    def status(self, numero_protocolo: str, *, party: Party | None = None):
        result = self.call(self.request("solicitacaoStatusProtocoloWS", numero_protocolo=numero_protocolo,
                                        party=party))
        assert result.situacaoProtocolo.mensagemErro is None, result.situacaoProtocolo.mensagemErro
        detalhe = result.situacaoProtocolo.situacaoDoProtocolo.lote.detalheLote
        assert detalhe.numeroProtocolo == numero_protocolo
        assert (result.Signature is not None) == self.profile.assina_respostas
        return detalhe

    def demonstrativo(self, data: bytes, *edits: zeep.Plugin):
        return self.call(data, *edits).demonstrativoRetorno


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(tiss_home: Path) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(tiss_home, seed=SEED, start=START) as process:  # --all, time scale 0
        yield process


@pytest.fixture(autouse=True)
def _simulator_log_on_failure(request: pytest.FixtureRequest, sim: SimulatorProcess) -> Iterator[None]:
    start = len(sim.log())
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        print(f"--- log do simulador ---\n{sim.log()[start:][-20_000:]}")


@pytest.fixture(scope="module")
def authority(sim: SimulatorProcess) -> pki.Authority:
    """The sandbox CA the simulator made on its first start: it issues providers' certificates too."""
    return pki.load_authority(sim.home / "simulator" / "runtime")


@pytest.fixture(scope="module")
def ops(sim: SimulatorProcess, authority: pki.Authority) -> dict[str, Operadora]:
    leaf = authority.issue("Clínica Demonstração", cnpj=CLINICA)
    return {key: Operadora(sim, key, leaf) for key in PROFILE_KEYS}


def local_now(sim: SimulatorProcess) -> datetime:
    """The simulated clock, Brasília time."""
    return datetime.fromisoformat(sim.state()["clock"]["local"])


# --- reading messages and answers --------------------------------------------------------------------

_NUMERO_GUIA = "string((.//ans:numeroGuiaPrestador)[1])"
_VALOR_GUIA = ("ans:valorTotal/ans:valorTotalGeral",  # SP/SADT, resumo de internação
               "ans:dadosAtendimento/ans:procedimento/ans:valorProcedimento",  # consulta
               "ans:valorTotalHonorarios", "ans:valorTotalProc")


def guias_enviadas(data: bytes) -> dict[str, Decimal]:
    """numeroGuiaPrestador -> the guide's total, as the lote ``data`` bills it."""
    totals = {}
    for guia in etree.fromstring(data).find(f"{A}loteGuias/{A}guiasTISS"):
        valor = next(v for v in (guia.findtext(p, namespaces=NS) for p in _VALOR_GUIA) if v)
        totals[guia.xpath(_NUMERO_GUIA, namespaces=NS)] = Decimal(valor)
    return totals


def edited(data: bytes, change: Callable[[etree._Element], None], variant: str = hashing.DECLARED) -> bytes:
    """The factory message ``data`` (UTF-8) changed and its hash re-stamped with ``variant``."""
    root = etree.fromstring(data)
    change(root)
    stamp(root, variant)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def guias(root: etree._Element) -> list[etree._Element]:
    return [g for g in root.find(f"{A}loteGuias/{A}guiasTISS") if isinstance(g.tag, str)]


def erro(part) -> tuple[str, str]:
    """(codigoGlosa, descricaoGlosa) of an answer's mensagemErro."""
    assert part.mensagemErro is not None, part
    return part.mensagemErro.codigoGlosa, part.mensagemErro.descricaoGlosa


def advance_to(sim: SimulatorProcess, recebido: datetime, horas: float) -> None:
    """Move the clock to ``horas`` after ``recebido`` (the clock only goes forward)."""
    delta = recebido + timedelta(hours=horas) - local_now(sim)
    assert delta >= timedelta(0), f"o relógio já passou de {horas} h após o recebimento"
    sim.advance(seconds=delta.total_seconds())


def lote_com_glosas(profile: Profile, n: int, prefixo: str, tipos: frozenset[str]) -> str:
    """A numeroLote whose ``n`` guides the operator glosa exactly in the ways ``tipos`` (its own
    seeded draw, simulator.lifecycle.decidir_glosa: the same numbers give the same glosas)."""
    for i in itertools.count(1):
        numero = f"{prefixo}{i}"
        if set(glosas_drawn(profile, numero, n, SEED)) == tipos:
            return numero
    raise AssertionError("unreachable")


TODAS_AS_GLOSAS = frozenset({lifecycle.GLOSA_TOTAL, lifecycle.GLOSA_PARCIAL, lifecycle.GLOSA_NENHUMA})


# =====================================================================================================
# 1. every rule of each profile
# =====================================================================================================


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_versions_each_operator_takes(sim, ops, key):
    """4.02.00 and 4.03.00 where the profile takes both; Unimed serves no 4.02.00 WSDL and answers
    a 4.02.00 message (from another operator's 4.02.00 WSDL) with VersaoInvalida (5028)."""
    op = ops[key]
    served = requests.get(sim.wsdl_url(key, "tissLoteGuias", V402), timeout=30)
    assert op.send_lote(op.lote(1)).detalheProtocolo.numeroProtocolo  # 4.03.00: everyone
    old = op.lote(1, version=V402)
    if V402 in op.profile.versoes:
        assert served.status_code == 200
        assert op.send_lote(old).detalheProtocolo.numeroProtocolo
    else:
        assert served.status_code == 404 and "não aceita" in served.text
        client = ops["capitalprev"].client("tissLoteGuias", V402)
        fault, text = op.refused(old, client=client, address=sim.service_url(key, "tissLoteGuias", V402))
        assert fault == "VersaoInvalida"
        assert f"não aceita a versão {V402} (aceitas: {', '.join(op.profile.versoes)})" in text


def _espacos_na_observacao(root: etree._Element) -> None:
    observacao = root.find(f".//{A}observacao")
    observacao.text = f"  {observacao.text}  "  # a value with blanks around it: the trimmed variant differs


@pytest.mark.parametrize("variant", ["iso-8859-1", "trimmed"])
@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_hash_variants_each_operator_accepts(ops, key, variant):
    """A request hashed by another rule than the declared encoding's: accepted (and answered)
    where the profile's hash_aceito lists it, HashInvalido (5014) elsewhere."""
    op = ops[key]
    data = edited(op.request("solicitacaoProcedimentoWS", numero_guia_prestador=f"H{new_id()}"),
                  _espacos_na_observacao, variant)
    root = etree.fromstring(data)
    assert hashing.check(root, "UTF-8", hashing.LENIENT).variant == variant  # and not the declared one
    signer = Sign(op.leaf, restamp=False) if op.profile.assinatura_exigida else None
    plugins = (signer,) if signer else ()
    if variant in op.profile.hash_aceito:
        result = op.call(data, *plugins, sign=False)
        assert result.autorizacaoProcedimento.mensagemErro is None
    else:
        fault, text = op.refused(data, *plugins, sign=False)
        assert fault == "HashInvalido" and text.startswith("[5014]") and f"'{variant}'" in text


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_answers_are_hashed_in_the_profile_variant(ops, key):
    """The answer's hash follows the profile's hash_variante (CASSEMS: ISO-8859-1 on a UTF-8
    answer, which the declared-encoding rule does not reproduce)."""
    op = ops[key]
    result = op.call(op.request("pedidoElegibilidadeWS"))
    assert result.respostaElegibilidade is not None
    answer = op.answer()
    assert any(ord(c) > 127 for c in "".join(hashing.leaf_values(answer)))  # accents: variants differ
    check = hashing.check(answer, "UTF-8", hashing.HashPolicy.of([op.profile.hash_variante]))
    assert check.accepted
    assert hashing.check(answer, "UTF-8").accepted == (op.profile.hash_variante in ("declared", "utf-8"))


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_size_limit_of_each_operator(ops, key):
    """max_bytes: an 11 MiB request is over Capital Prev's, Unimed's, CASSEMS' and IPASGO's 10 MiB
    and within PASA's 15 MiB ("tamanho máximo informado de 15MB"); refused before reading, with
    SchemaInvalido (5002)."""
    op = ops[key]
    limit = op.profile.max_bytes
    if limit < 11 * MiB:
        fault, text = op.refused(op.lote(1), Pad(11 * MiB))
        assert fault == "SchemaInvalido" and text.endswith(f"excede o limite de {limit} bytes (5002).")
    else:
        assert op.send_lote(op.lote(1), Pad(11 * MiB)).detalheProtocolo.numeroProtocolo
        fault, text = op.refused(op.lote(1), Pad(limit))
        assert fault == "SchemaInvalido" and f"excede o limite de {limit} bytes (5002)" in text


def _mais_uma_guia(root: etree._Element) -> None:
    lista = root.find(f"{A}loteGuias/{A}guiasTISS")
    extra = copy.deepcopy(lista[-1])
    extra.find(f".//{A}numeroGuiaPrestador").text += "9"
    lista.append(extra)


def test_pasa_takes_100_guides_per_lote(ops):
    """PASA: "um máximo de 100 guias" per XML; accepted whole, every guide in the protocol."""
    pasa = ops["pasa"]
    data = pasa.lote(100, "consulta")
    protocolo = pasa.send_lote(data).detalheProtocolo
    enviadas = guias_enviadas(data)
    assert [g.numeroGuiaPrestador for g in protocolo.dadosGuiasProtocolo.dadosGuias] == list(enviadas)
    assert protocolo.valorTotalProtocolo == sum(enviadas.values())


@pytest.mark.parametrize("key", [k for k in PROFILE_KEYS if PROFILES[k].max_guias_lote == 100])
def test_101_guides_are_refused_by_the_schema(ops, key):
    """max_guias_lote 100 is the Padrão's own limit (ctm_guiaLote maxOccurs 100): zeep will not
    even parse 101 guides, so the 101st is added on the way out; SchemaInvalido (5001)."""
    op = ops[key]
    fault, text = op.refused(op.lote(100, "consulta"), Edit(_mais_uma_guia))
    assert fault == "SchemaInvalido" and text.startswith("[5001]") and "guiaConsulta" in text


def test_unimed_one_guide_type_per_lote(ops):
    """Unimed sends one XML per guide type: a lote mixing consulta and SP/SADT is out of the
    schema (ctm_guiaLote is a choice), SchemaInvalido (5001)."""
    unimed = ops["unimed"]
    sadt = guias(etree.fromstring(unimed.lote(1, "sp-sadt")))[0]

    def misturar(ws: etree._Element) -> None:
        ws.find(f"{A}loteGuias/{A}guiasTISS").append(copy.deepcopy(sadt))

    fault, text = unimed.refused(unimed.lote(1, "consulta"), Edit(misturar))
    assert fault == "SchemaInvalido" and text.startswith("[5001]") and "guiaSP-SADT" in text


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_origem_must_be_the_logged_in_provider(ops, key):
    """prestador_conhecido (PASA's "1206 CPF / CNPJ INVÁLIDO"): a sender CNPJ that is not the
    logged-in provider's is RemetenteInvalido before any crítica (the login names the provider)."""
    op = ops[key]
    outra = Party(cnpj=OUTRA_CLINICA, login=op.prestador.login, senha=op.prestador.senha,
                  registro_ans=op.profile.registro_ans)
    fault, text = op.refused(op.lote(1, party=outra))
    assert fault == "RemetenteInvalido"
    assert text == f"CPF / CNPJ {OUTRA_CLINICA} da origem não é o do prestador autenticado."
    errada = Party(login=op.prestador.login, senha="errada", registro_ans=op.profile.registro_ans)
    assert op.refused(op.lote(1, party=errada)) == ("LoginInvalido", "Login ou senha inválidos.")


def _executante(tag: str, value: str, indice: int = 1) -> Callable[[etree._Element], None]:
    """SP/SADT guide ``indice`` (0-based) executed by ``tag``=``value`` (field 29/30)."""
    def change(root: etree._Element) -> None:
        executante = guias(root)[indice].find(f"{A}dadosExecutante/{A}contratadoExecutante")
        executante[0].tag, executante[0].text = f"{A}{tag}", value
    return change


@pytest.mark.parametrize("tag, value", [
    ("cnpjContratado", "33187200000154"),  # Unimed São José dos Campos' CNPJ
    ("codigoPrestadorNaOperadora", "331872"),  # its registro ANS
    ("codigoPrestadorNaOperadora", "00001"),  # its own network's code (codigos_proprios)
])
def test_unimed_refuses_sp_sadt_executed_by_the_operator(ops, tag, value):
    """executante_sadt: "Caso esteja como Unimed São José dos Campos [...] não fará o envio": one
    such guide refuses the whole lote (1311); fixed, the same lote is accepted. Another operator,
    without the rule, takes such a guide."""
    unimed = ops["unimed"]
    assert value in {unimed.profile.cnpj, unimed.profile.registro_ans, *unimed.profile.codigos_proprios}
    numero = new_id()
    data = unimed.lote(3, "sp-sadt", numero_lote=numero)
    result = unimed.call(edited(data, _executante(tag, value)))
    codigo, descricao = erro(result.recebimentoLote)
    assert codigo == "1311"
    assert descricao.startswith("Erro no envio do lote (1311 - ")
    assert f"guia SP/SADT {numero_guia_prestador(numero, 2)} com a própria operadora" in descricao
    assert result.recebimentoLote.protocoloRecebimento is None
    protocolo = unimed.send_lote(unimed.lote(3, "sp-sadt", numero_lote=numero))  # corrected, sent again
    assert len(protocolo.detalheProtocolo.dadosGuiasProtocolo.dadosGuias) == 3
    pasa = ops["pasa"]
    assert pasa.send_lote(edited(pasa.lote(3, "sp-sadt"), _executante(tag, value))).detalheProtocolo


@pytest.mark.parametrize("guide_type", ["consulta", "sp-sadt", "honorarios", "resumo-internacao"])
def test_cassems_takes_dental_guides_only(ops, guide_type):
    """tipo_de_guia_aceito: "Tipo Guia, sendo somente Odontológica" (1301)."""
    cassems = ops["cassems"]
    result = cassems.call(cassems.lote(2, guide_type))
    codigo, descricao = erro(result.recebimentoLote)
    assert codigo == "1301"
    assert descricao.startswith("Lote não aceito - TIPO DE GUIA INVÁLIDO (1301): guias de ")
    assert descricao.endswith("não são aceitas neste canal; tipos aceitos: tratamento odontológico")


def test_cassems_at_most_50_guides(ops):
    """max_guias_lote 50: "Cada lote deve conter no máximo 50 autorizações" (5015)."""
    cassems = ops["cassems"]
    numero = new_id()
    codigo, descricao = erro(cassems.call(cassems.lote(51, numero_lote=numero)).recebimentoLote)
    assert codigo == "5015"
    assert descricao.endswith(f"o lote {numero} tem 51 guias; o limite máximo permitido por lote é de "
                              "50 guias")
    protocolo = cassems.send_lote(cassems.lote(50, numero_lote=numero))
    assert len(protocolo.detalheProtocolo.dadosGuiasProtocolo.dadosGuiasOdonto) == 50


def _sem(campo: str, indice: int = 1) -> Callable[[etree._Element], None]:
    """Guide ``indice`` without ``campo`` (``a/b``: without b in every a)."""
    def change(root: etree._Element) -> None:
        guia = guias(root)[indice]
        for element in guia.xpath("/".join(f"ans:{step}" for step in campo.split("/")), namespaces=NS):
            element.getparent().remove(element)
    return change


@pytest.mark.parametrize("campo", PROFILES["cassems"].campos_obrigatorios["odonto"])
def test_cassems_refuses_an_incomplete_dental_guide(ops, campo):
    """guia_completa: only guides with every asterisk field enter a lote; one incomplete guide
    sends the lote back for correction (3111), naming the guide and the field."""
    cassems = ops["cassems"]
    numero = new_id()
    result = cassems.call(edited(cassems.lote(3, numero_lote=numero), _sem(campo)))
    codigo, descricao = erro(result.recebimentoLote)
    assert codigo == "3111"
    assert descricao.startswith("Lote não aceito - ")
    assert f"guia {numero_guia_prestador(numero, 2)} incompleta; preencha os campos obrigatórios: {campo}" \
        in descricao
    assert result.recebimentoLote.protocoloRecebimento is None


def _matriculas(*values: str) -> Callable[[etree._Element], None]:
    """The honorários guides' receiver (dadosContratadoExecutante/codigonaOperadora), in order."""
    def change(root: etree._Element) -> None:
        for guia, value in zip(guias(root), values, strict=True):
            guia.find(f"{A}dadosContratadoExecutante/{A}codigonaOperadora").text = value
    return change


def test_ipasgo_refuses_honorarios_one_by_one(ops):
    """honorarios_matricula with envio_parcial: a guide without the receiver's matrícula (1311)
    or with an unknown one (1203) is refused alone; the protocol lists and totals the others.
    (A blank is the only "without" the schema lets through: codigonaOperadora is st_texto14.)"""
    ipasgo = ops["ipasgo"]
    numero = new_id()
    conhecida = ipasgo.profile.matriculas[0]
    data = edited(ipasgo.lote(4, "honorarios", numero_lote=numero),
                  _matriculas(ipasgo.prestador.codigo_na_operadora, " ", "9999999", conhecida))
    protocolo = ipasgo.send_lote(data)
    enviadas = guias_enviadas(data)
    aceitas = [numero_guia_prestador(numero, 1), numero_guia_prestador(numero, 4)]
    detalhe = protocolo.detalheProtocolo
    assert [g.numeroGuiaPrestador for g in detalhe.dadosGuiasProtocolo.dadosGuias] == aceitas
    assert detalhe.valorTotalProtocolo == sum(enviadas[g] for g in aceitas) < sum(enviadas.values())
    assert protocolo.numeroLote == numero
    # every guide refused: the lote is refused, with the first crítica
    todas = edited(ipasgo.lote(2, "honorarios"), _matriculas(" ", "9999999"))
    codigo, descricao = erro(ipasgo.call(todas).recebimentoLote)
    assert codigo == "1311"
    assert descricao.startswith("1311 - ") and "sem a matrícula de quem receberá os honorários" in descricao


def test_capitalprev_numbers_lotes_and_refuses_a_lote_number_again(ops):
    """Capital Prev: "Lote Operadora" 8-digit sequence after 00000036; a lote number already
    received is refused (3268 in 4.03.00, 1308 GUIA JÁ APRESENTADA in 4.02.00, which lacks 3268)."""
    capital = ops["capitalprev"]
    numero = new_id()
    primeiro = capital.send_lote(capital.lote(2, numero_lote=numero)).detalheProtocolo.numeroProtocolo
    assert len(primeiro) == 8 and int(primeiro) >= 37
    codigo, descricao = erro(capital.call(capital.lote(2, numero_lote=numero)).recebimentoLote)
    assert codigo == "3268"
    assert descricao == f"Número de lote {numero} já informado anteriormente (Lote Operadora {primeiro})."
    old = capital.lote(1, numero_lote=numero, version=V402)
    assert erro(capital.call(old).recebimentoLote)[0] == "1308"
    segundo = capital.send_lote(capital.lote(2)).detalheProtocolo.numeroProtocolo
    assert int(segundo) > int(primeiro)


def _carteiras() -> list[tuple[str, str, str | None]]:
    cases = []
    for key, profile in PROFILES.items():
        cases.append((key, "1234", None))
        cases.extend((key, regra.sufixo, regra.codigo) for regra in profile.elegibilidade)
    return cases


@pytest.mark.parametrize("key, sufixo, motivo", _carteiras())
def test_card_rules_of_each_operator(ops, key, sufixo, motivo):
    """[[elegibilidade]]: the card's ending decides (1001 invalid, 1017 expired, and each
    operator's own: 1016 suspended, 1025 no dental cover, 1006 after leaving the plan)."""
    op = ops[key]
    carteira = f"{op.profile.registro_ans}000001{sufixo}"
    result = op.call(op.request("pedidoElegibilidadeWS", numero_carteira=carteira))
    recibo = result.respostaElegibilidade.reciboElegibilidade
    assert recibo.numeroCarteira == carteira
    assert recibo.respostaSolicitacao == ("N" if motivo else "S")
    motivos = [m.codigoGlosa for m in recibo.motivosNegativa.motivoNegativa] if recibo.motivosNegativa else []
    assert motivos == ([motivo] if motivo else [])


def _procedimentos(codigo: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        for element in root.iter(f"{A}codigoProcedimento"):
            element.text = codigo
    return change


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_authorisation_rules_of_each_operator(sim, ops, key):
    """[autorizacao]: a procedure in ``negados`` is denied with its code (3), one in
    ``em_analise`` waits (2) for ``horas_em_analise`` and is then authorised with a senha (1);
    any other is authorised at once."""
    op = ops[key]
    regras = op.profile.autorizacao

    def solicitar(codigo: str, guia: str):
        data = edited(op.request("solicitacaoProcedimentoWS", numero_guia_prestador=guia),
                      _procedimentos(codigo))
        return op.call(data).autorizacaoProcedimento.autorizacaoServico

    def situacao(guia: str):
        result = op.call(op.request("solicitacaoStatusAutorizacaoWS", numero_guia_prestador=guia))
        return result.situacaoAutorizacao.autorizacaoServico

    (negado, motivo), *_ = regras.negados.items()
    servico = solicitar(negado, f"N{new_id()}")
    assert servico.statusSolicitacao == "3"
    assert servico.motivosNegativa.codigoGlosa == [motivo]
    livre = solicitar("40302040", f"L{new_id()}")  # creatinina: no rule anywhere
    assert livre.statusSolicitacao == "1" and len(livre.dadosAutorizacao.senha) == 8
    guia = f"E{new_id()}"
    assert solicitar(regras.em_analise[0], guia).statusSolicitacao == "2"
    pedido = local_now(sim)
    advance_to(sim, pedido, regras.horas_em_analise - 0.5)
    assert situacao(guia).statusSolicitacao == "2"
    advance_to(sim, pedido, regras.horas_em_analise)
    decidida = situacao(guia)
    assert decidida.statusSolicitacao == "1" and len(decidida.dadosAutorizacao.senha) == 8


# =====================================================================================================
# 2. the status walk with the clock
# =====================================================================================================


def _check_valores(detalhe, informado: Decimal) -> None:
    """valorTotalLote as the status shows it: received (nothing processed) or analysed."""
    valores = detalhe.valorTotalLote
    if int(detalhe.statusProtocolo) in (3, 4, 5, 6):
        assert valores.valorProcessado == informado
        assert valores.valorProcessado - valores.valorGlosa == valores.valorLiberado
    else:
        assert (valores.valorProcessado, valores.valorGlosa, valores.valorLiberado) == (informado, 0, 0)


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_status_walks_the_profile_flow_with_the_clock(sim, ops, key):
    """situacaoProtocolo step by step along the profile's [[status]] hours, just before and at
    each step, until 6 Pagamento efetuado."""
    op = ops[key]
    data = op.lote(5)
    recebido = local_now(sim)
    protocolo = op.send_lote(data)
    numero = protocolo.detalheProtocolo.numeroProtocolo
    informado = sum(guias_enviadas(data).values())
    assert protocolo.detalheProtocolo.valorTotalProtocolo == informado
    seen = []
    anterior = None
    for etapa in op.profile.status:
        if anterior is not None and etapa.apos_horas > anterior.apos_horas:
            advance_to(sim, recebido, etapa.apos_horas - 0.25)  # not there yet
            detalhe = op.status(numero)
            assert int(detalhe.statusProtocolo) == anterior.status_tiss, (etapa.nome, anterior.nome)
        advance_to(sim, recebido, etapa.apos_horas)
        detalhe = op.status(numero)
        assert int(detalhe.statusProtocolo) == etapa.status_tiss, etapa.nome
        _check_valores(detalhe, informado)
        seen.append(etapa.status_tiss)
        anterior = etapa
    assert seen[-1] == 6 and seen == [e.status_tiss for e in op.profile.status]
    advance_to(sim, recebido, anterior.apos_horas + 24 * 30)  # and stays paid
    assert op.status(numero).statusProtocolo == "6"


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_a_lote_glosado_in_full_ends_without_payment(sim, ops, key):
    """status_glosa_total: a lote whose every guide is glosado in full leaves the flow at the
    analysis (4 Encerrado sem pagamento), shows liberado 0 and is never paid."""
    op = ops[key]
    numero_lote = lote_com_glosas(op.profile, 1, "T", frozenset({lifecycle.GLOSA_TOTAL}))
    data = op.lote(1, numero_lote=numero_lote)
    recebido = local_now(sim)
    numero = op.send_lote(data).detalheProtocolo.numeroProtocolo
    informado = sum(guias_enviadas(data).values())
    fim = op.profile.status_glosa_total
    advance_to(sim, recebido, fim.apos_horas - 0.25)
    assert op.status(numero).statusProtocolo in {str(e.status_tiss) for e in op.profile.status}
    advance_to(sim, recebido, fim.apos_horas)
    detalhe = op.status(numero)
    assert int(detalhe.statusProtocolo) == fim.status_tiss == 4
    assert (detalhe.valorTotalLote.valorGlosa, detalhe.valorTotalLote.valorLiberado) == (informado, 0)
    advance_to(sim, recebido, op.profile.status[-1].apos_horas + 24)
    assert op.status(numero).statusProtocolo == "4"


# =====================================================================================================
# 3. the demonstrativos' totals
# =====================================================================================================


def _horas(profile: Profile, status_desde: int) -> float:
    """Hours after receipt from which the profile's flow has reached ``status_desde`` or later."""
    ordem = [e.status_tiss for e in profile.status]
    return next(e.apos_horas for e in profile.status
                if ordem.index(e.status_tiss) >= ordem.index(status_desde))


def _check_analise(dem, numero: str, enviadas: dict[str, Decimal], codigos: set[str]) -> dict:
    """The análise's totals add up (items -> guides -> protocol -> demonstrativo), the informado is
    the lote sent and every glosa is one of the operator's codes. Returns the protocol's values
    and each guide's (processado, liberado, glosa)."""
    (analise,) = dem.demonstrativoAnaliseConta
    protocolos = {p.numeroProtocolo: p for p in analise.dadosConta.dadosProtocolo}
    protocolo = protocolos[numero]
    por_guia = {}
    for guia in protocolo.relacaoGuias:
        itens = guia.detalhesGuia
        glosas = [sum((g.valorGlosa for g in item.relacaoGlosa), Decimal(0)) for item in itens]
        for item, glosa in zip(itens, glosas, strict=True):
            assert item.valorProcessado == item.valorInformado
            assert item.valorProcessado - glosa == item.valorLiberado >= 0
            assert {g.tipoGlosa for g in item.relacaoGlosa} <= codigos
        assert guia.valorInformadoGuia == sum(i.valorInformado for i in itens) \
            == enviadas[guia.numeroGuiaPrestador]
        assert guia.valorProcessadoGuia == sum(i.valorProcessado for i in itens)
        assert guia.valorLiberadoGuia == sum(i.valorLiberado for i in itens)
        assert guia.valorGlosaGuia == sum(glosas)
        assert {m.codigoGlosa for m in guia.motivoGlosaGuia} <= codigos
        if guia.motivoGlosaGuia:  # the guide's motive: a glosa of the whole guide
            assert guia.valorLiberadoGuia == 0 < guia.valorGlosaGuia == guia.valorInformadoGuia
        por_guia[guia.numeroGuiaPrestador] = (guia.valorProcessadoGuia, guia.valorLiberadoGuia,
                                             guia.valorGlosaGuia)
    assert set(por_guia) == set(enviadas)
    valores = {name: getattr(protocolo, f"valor{name}Protocolo")
               for name in ("Informado", "Processado", "Liberado", "Glosa")}
    assert valores["Informado"] == sum(enviadas.values())
    for position, name in enumerate(("Processado", "Liberado", "Glosa")):
        assert valores[name] == sum(v[position] for v in por_guia.values()), name
    assert valores["Processado"] - valores["Glosa"] == valores["Liberado"]
    for name in ("Informado", "Processado", "Liberado", "Glosa"):
        assert getattr(analise, f"valor{name}Geral") == sum(
            getattr(p, f"valor{name}Protocolo") for p in analise.dadosConta.dadosProtocolo), name
    return {"protocolo": valores, "guias": por_guia}


def _check_pagamento(dem, numero: str, analise: dict, data_pagamento) -> None:
    """The payment of protocol ``numero`` is what its análise released; the demonstrativo's totals
    add up per date and overall (no debits or credits in the sandbox)."""
    pagamento = dem.demonstrativoPagamento
    assert pagamento is not None, dem
    relacao = {}
    for por_data in pagamento.pagamentos.pagamentosPorData:
        protocolos = por_data.dadosResumo.relacaoProtocolos
        for rel in protocolos:
            relacao[rel.numeroProtocolo] = (por_data.dadosPagamento.dataPagamento, rel)
            assert rel.valorLiberado == sum(g.valorLiberadoGuia for g in rel.guiasDoLote)
            assert rel.valorGlosa == sum(g.valorGlosaGuia for g in rel.guiasDoLote)
        brutos = por_data.totaisBrutosPorData
        assert brutos.totalInformadoPorData == sum(r.valorInformado for r in protocolos)
        assert brutos.totalProcessadoPorData == sum(r.valorProcessado for r in protocolos)
        assert brutos.totaLiberadoPorData == sum(r.valorLiberado for r in protocolos)
        assert brutos.totalGlosaPorData == sum(r.valorGlosa for r in protocolos)
        liquidos = por_data.totaisLiquidosPorData
        assert liquidos.liquidoPorData == brutos.totaLiberadoPorData - liquidos.totalDebitosPorData \
            + liquidos.totalCreditosPorData
    dia, rel = relacao[numero]
    assert dia == data_pagamento
    valores = analise["protocolo"]
    assert (rel.valorInformado, rel.valorProcessado, rel.valorLiberado, rel.valorGlosa) == \
        (valores["Informado"], valores["Processado"], valores["Liberado"], valores["Glosa"])
    assert {g.numeroGuiaPrestador: (g.valorProcessadoGuia, g.valorLiberadoGuia, g.valorGlosaGuia)
            for g in rel.guiasDoLote} == analise["guias"]
    assert {g.tipoPagamento for g in rel.guiasDoLote} == {"1"}  # initial payment, not a recurso
    totais = pagamento.totaisDemonstrativo
    datas = pagamento.pagamentos.pagamentosPorData
    brutos = totais.totaisBrutosDemonstrativo
    assert brutos.valorLiberadoBruto == sum(d.totaisBrutosPorData.totaLiberadoPorData for d in datas)
    assert brutos.valorGlosaBruto == sum(d.totaisBrutosPorData.totalGlosaPorData for d in datas)
    assert brutos.valorInformadoBruto == sum(d.totaisBrutosPorData.totalInformadoPorData for d in datas)
    assert totais.totaisLiquidosDemonstrativo.valorLiberadoDemonstrativo == sum(
        d.totaisLiquidosPorData.liquidoPorData for d in datas)


def _sem_o_protocolo(dem, numero: str) -> str:
    """A demonstrativo de pagamento that does not pay protocol ``numero``: its mensagemErro code, or
    "outros" when it pays other protocols (earlier tests' lotes paid in the same period)."""
    if dem.mensagemErro is not None:
        return dem.mensagemErro.codigoGlosa
    assert all(r.numeroProtocolo != numero for d in dem.demonstrativoPagamento.pagamentos.pagamentosPorData
               for r in d.dadosResumo.relacaoProtocolos)
    return "outros"


@pytest.mark.parametrize("key", [k for k in PROFILE_KEYS if 2 in PROFILES[k].demonstrativos])
def test_demonstrativos_add_up_to_the_lote_minus_the_glosas(sim, ops, key):
    """A lote of 6 guides the operator glosa in full, in part and not at all: no análise before
    the profile's demonstrativo_analise_desde (3019); then the análise's totals match the lote
    minus the glosas it lists; at the payment date the pagamento pays the análise's liberado."""
    op = ops[key]
    party = op.party
    guide_type = GUIA[key]
    if key == "ipasgo":  # honorários, receiver by the provider's own code (origem by code too)
        party = Party(codigo_na_operadora=op.prestador.codigo_na_operadora, login=op.prestador.login,
                      senha=op.prestador.senha, registro_ans=op.profile.registro_ans)
        guide_type = "honorarios"
    numero_lote = lote_com_glosas(op.profile, 6, "D", TODAS_AS_GLOSAS)
    data = op.lote(6, guide_type, numero_lote=numero_lote, party=party)
    enviadas = guias_enviadas(data)
    recebido = local_now(sim)
    numero = op.send_lote(data).detalheProtocolo.numeroProtocolo

    def analise():
        return op.demonstrativo(op.request("solicitacaoDemonstrativoRetornoWS", numero_protocolo=numero,
                                           party=party))

    def pagamento(competencia: str):
        return op.demonstrativo(op.request("solicitacaoDemonstrativoRetornoWS", demonstrativo="pagamento",
                                           competencia=competencia, party=party))

    desde = _horas(op.profile, op.profile.demonstrativo_analise_desde)
    advance_to(sim, recebido, desde - 0.25)
    cedo = analise()
    assert erro(cedo)[0] == "3019"
    assert "o demonstrativo de análise estará disponível a partir de" in erro(cedo)[1]
    advance_to(sim, recebido, desde)
    valores = _check_analise(analise(), numero, enviadas, set(op.profile.glosa.codigos))
    protocolo = valores["protocolo"]
    assert 0 < protocolo["Glosa"] < protocolo["Informado"]  # all three kinds of glosa are in there
    kinds = {"total" if liberado == 0 else "parcial" if glosa else "nenhuma"
             for _processado, liberado, glosa in valores["guias"].values()}
    assert kinds == {"total", "parcial", "nenhuma"}
    status = op.status(numero, party=party).valorTotalLote  # the status agrees with the análise
    assert (status.valorGlosa, status.valorLiberado) == (protocolo["Glosa"], protocolo["Liberado"])

    pago_em = recebido + timedelta(hours=_horas(op.profile, op.profile.demonstrativo_pagamento_desde))
    competencia = pago_em.strftime("%Y%m")
    advance_to(sim, recebido, _horas(op.profile, op.profile.demonstrativo_pagamento_desde) - 0.25)
    assert _sem_o_protocolo(pagamento(competencia), numero) in ("3019", "outros")  # not paid yet
    advance_to(sim, recebido, _horas(op.profile, op.profile.demonstrativo_pagamento_desde))
    _check_pagamento(pagamento(competencia), numero, valores, pago_em.date())
    antes = (pago_em.replace(day=1) - timedelta(days=1)).strftime("%Y%m")
    assert _sem_o_protocolo(pagamento(antes), numero) in ("5016", "outros")  # nothing paid then


def _tipo_demonstrativo(tipo: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        root.find(f".//{A}tipoDemonstrativo").text = tipo
    return change


def test_cassems_dental_payment_adds_up_to_the_lote_minus_the_glosas(sim, ops):
    """CASSEMS issues only the dental payment demonstrativo (dm_tipoDemonstrativo 3; 1 and the
    análise are 3148): per item informado - glosa = liberado, the guides' totals are the lote's
    guides, the glosas are those the status shows, and every total adds up."""
    cassems = ops["cassems"]
    numero_lote = lote_com_glosas(cassems.profile, 6, "D", TODAS_AS_GLOSAS)
    data = cassems.lote(6, numero_lote=numero_lote)
    enviadas = guias_enviadas(data)
    recebido = local_now(sim)
    numero = cassems.send_lote(data).detalheProtocolo.numeroProtocolo
    horas = _horas(cassems.profile, cassems.profile.demonstrativo_pagamento_desde)
    pago_em = recebido + timedelta(hours=horas)
    competencia = pago_em.strftime("%Y%m")

    def pedido(tipo: str) -> bytes:
        return edited(cassems.request("solicitacaoDemonstrativoRetornoWS", demonstrativo="pagamento",
                                      competencia=competencia), _tipo_demonstrativo(tipo))

    advance_to(sim, recebido, horas - 0.25)
    assert erro(cassems.demonstrativo(pedido("3")))[0] == "3019"
    advance_to(sim, recebido, horas)
    assert erro(cassems.demonstrativo(pedido("1")))[0] == "3148"
    assert erro(cassems.demonstrativo(cassems.request("solicitacaoDemonstrativoRetornoWS",
                                                      numero_protocolo=numero)))[0] == "3148"
    glosas_status = {g.guias.numeroGuiaPrestador: g.guias.vlInformadoGuia.valorGlosa
                     for g in cassems.status(numero).guiasTISS.guiasOdonto}
    dem = cassems.demonstrativo(pedido("3")).demonstrativoPagamentoOdonto
    codigos = set(cassems.profile.glosa.codigos)
    nosso = None
    for por_data in dem.dadosPagamentoPorData:
        for protocolo in por_data.protocolos:
            for guia in protocolo.dadosPagamentoGuia:
                itens = guia.dadosPagamento
                for item in itens:
                    assert item.valorProcessado == item.valorInformado
                    liberado = item.valorProcessado - item.valorGlosaEstorno - item.valorFranquia
                    assert liberado == item.valorLiberado
                    assert set(item.codigosGlosa) <= codigos
                    assert bool(item.codigosGlosa) == (item.valorGlosaEstorno > 0)
                for total, campo in (("Informado", "valorInformado"), ("Processado", "valorProcessado"),
                                     ("Glosa", "valorGlosaEstorno"), ("Franquia", "valorFranquia"),
                                     ("Liberado", "valorLiberado")):
                    assert getattr(guia, f"valorTotal{total}Guia") == sum(getattr(i, campo) for i in itens)
            for total in ("Informado", "Processado", "Glosa", "Franquia", "Liberado"):
                assert getattr(protocolo.totaisPorProtocolo, f"valorTotal{total}PorProtocolo") == sum(
                    getattr(g, f"valorTotal{total}Guia") for g in protocolo.dadosPagamentoGuia)
            if protocolo.numeroProtocolo == numero:
                nosso = protocolo
                assert por_data.dadosPagamento.dataPagamento == pago_em.date()
        totais = por_data.totaisPorData
        assert totais.valorBrutoLiberadoPorData == sum(p.totaisPorProtocolo.valorTotalLiberadoPorProtocolo
                                                       for p in por_data.protocolos)
        assert totais.valorBrutoGlosaPorData == sum(p.totaisPorProtocolo.valorTotalGlosaPorProtocolo
                                                    for p in por_data.protocolos)
        assert por_data.totalLiquidoPorData.valorFinalAReceberPorData == totais.valorBrutoLiberadoPorData
    assert nosso is not None
    assert {g.numeroGuiaPrestador: g.valorTotalInformadoGuia for g in nosso.dadosPagamentoGuia} == enviadas
    assert {g.numeroGuiaPrestador: g.valorTotalGlosaGuia for g in nosso.dadosPagamentoGuia} == glosas_status
    totais = nosso.totaisPorProtocolo
    assert totais.valorTotalInformadoPorProtocolo == sum(enviadas.values())
    assert 0 < totais.valorTotalGlosaPorProtocolo < totais.valorTotalInformadoPorProtocolo
    assert totais.valorTotalLiberadoPorProtocolo == totais.valorTotalInformadoPorProtocolo \
        - totais.valorTotalGlosaPorProtocolo
    brutos = dem.totaisBrutoDemonstrativo
    assert brutos.valorLiberadoPorDemonstrativo == sum(d.totaisPorData.valorBrutoLiberadoPorData
                                                       for d in dem.dadosPagamentoPorData)
    assert dem.valorRecebidoDemonstrativo == brutos.valorLiberadoPorDemonstrativo


# =====================================================================================================
# 4. signatures accepted and rejected (IPASGO)
# =====================================================================================================


def test_ipasgo_accepts_a_signed_lote_and_signs_its_answer(sim, ops):
    """A request signed (after zeep re-serialised it) with a certificate of the sandbox CA is
    accepted; the answer carries IPASGO's signature, which verifies against the CA from
    GET /admin/ipasgo/certificate and names IPASGO's CNPJ."""
    ipasgo = ops["ipasgo"]
    result = ipasgo.call(ipasgo.lote(2))
    assert result.recebimentoLote.protocoloRecebimento.detalheProtocolo.numeroProtocolo
    assert result.Signature is not None
    sent = ws_of(ipasgo.history.last_sent["envelope"])
    assert xmldsig.verify(sent, ipasgo.leaf.chain_pem[-1]).documento == CLINICA
    _leaf_pem, ca_pem = sim.certificate("ipasgo").split("-----END CERTIFICATE-----\n", 1)
    answer = ipasgo.answer()
    assert hashing.check(answer, "UTF-8").accepted
    assert xmldsig.verify(answer, ca_pem.encode()).documento == ipasgo.profile.cnpj
    with pytest.raises(xmldsig.SignatureError) as caught:  # not another CA's
        xmldsig.verify(answer, pki.new_authority("AC Estranha").cert_pem)
    assert caught.value.codigo == xmldsig.CADEIA_INVALIDA


def test_operators_that_do_not_check_signatures_take_a_signed_request(ops):
    """assinatura_exigida false: a signed request is accepted like any other, the answer unsigned."""
    pasa = ops["pasa"]
    result = pasa.call(pasa.lote(1), sign=pasa.leaf)
    assert result.recebimentoLote.protocoloRecebimento is not None and result.Signature is None


def _altera_carteira(ws: etree._Element) -> None:
    carteira = ws.find(f".//{A}numeroCarteira")
    carteira.text = carteira.text[:-1] + str((int(carteira.text[-1]) + 1) % 10)


def _de_outra_ac() -> pki.Leaf:
    return pki.new_authority("AC Estranha").issue("Clínica Demonstração", cnpj=CLINICA)


def _vencido(authority: pki.Authority) -> pki.Leaf:
    return authority.issue("Clínica Demonstração", cnpj=CLINICA, days=1,
                           not_before=datetime.now(UTC) - timedelta(days=3))


# case -> (zeep egress: Operadora.call keyword arguments, tissFault, code, text in the faultstring)
RECUSAS: dict[str, tuple[Callable[[pki.Authority], dict], str, str, str]] = {
    "sem assinatura": (lambda ca: {"sign": False}, "SchemaInvalido", "5022",
                       "Mensagem loteGuiasWS sem assinatura digital."),
    "outra AC": (lambda ca: {"sign": _de_outra_ac()}, "RemetenteInvalido", "5021",
                 "não foi emitido por uma AC confiável (emissor: CN=AC Estranha"),
    "certificado vencido": (lambda ca: {"sign": _vencido(ca)}, "RemetenteInvalido", "5019", "vencido em"),
    "alterada depois de assinada": (lambda ca: {"after": (Edit(_altera_carteira),)}, "SchemaInvalido", "5022",
                                    "o conteúdo foi alterado depois de assinado."),
    "alterada sem refazer o hash": (lambda ca: {"after": (Edit(_altera_carteira, restamp=False),)},
                                    "HashInvalido", "5014", "não confere; hash calculado"),
}


@pytest.mark.parametrize("case", RECUSAS)
def test_ipasgo_refuses_requests_not_signed_by_the_sender(ops, authority, case):
    """assinatura_exigida: no signature (5022), a certificate from another CA (5021) or expired
    (5019) — RemetenteInvalido —, a signed message changed afterwards with its hash re-stamped
    (5022: the signature covers the hash), or not re-stamped, which the hash check before the
    signature's catches (5014). Nothing is received: the same lote, properly signed, is accepted."""
    how, expected_fault, code, detail = RECUSAS[case]
    ipasgo = ops["ipasgo"]
    numero = new_id()
    fault, text = ipasgo.refused(ipasgo.lote(1, numero_lote=numero), **how(authority))
    assert fault == expected_fault and text.startswith(f"[{code}] ") and detail in text, text
    protocolo = ipasgo.send_lote(ipasgo.lote(1, numero_lote=numero))
    assert protocolo.numeroLote == numero


def test_ipasgo_refuses_a_request_signed_by_another_provider(ops, authority):
    """A certificate of the sandbox CA issued to another CNPJ does not identify the sender."""
    ipasgo = ops["ipasgo"]
    outra = authority.issue("Outra Clínica", cnpj=OUTRA_CLINICA)
    fault, _text = ipasgo.refused(ipasgo.lote(1), sign=outra)
    assert fault == "RemetenteInvalido"
