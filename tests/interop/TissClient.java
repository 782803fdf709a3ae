// An ERP written with JAX-WS (the RI that Debian's jaxws package ships), against the gateway's served
// WSDLs, through the classes wsimport generated from them (packages tiss.lote and tiss.status, set by
// the binding files tests/process/test_interop.py writes).
//
// java TissClient PLAN.properties  ->  key=value lines on stdout.
// PLAN: lote.wsdl, status.wsdl (URLs), lote.file (a loteGuiasWS document built elsewhere, read into
// the generated LoteGuiasWS with JAXB and sent through the typed port), the status cabecalho
// (sequencial, data, hora, cnpj, registroANS, padrao, login, senha), and the fault cases
// faults=name,... with fault.<name>.sequencial / .senha / .hash.
// TissHash, a SOAP handler, stamps the TISS hash over what JAX-WS serialised: MD5 of the leaf
// values in document order, UTF-8 (what JAX-WS sends). Faults are read as the generated TissFault
// exception (its faultInfo is the tissFaultWS).

import java.io.File;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.math.BigInteger;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.Set;

import javax.xml.bind.JAXBContext;
import javax.xml.bind.JAXBElement;
import javax.xml.datatype.DatatypeFactory;
import javax.xml.namespace.QName;
import javax.xml.transform.stream.StreamSource;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;

import org.w3c.dom.Element;
import org.w3c.dom.Node;

import br.gov.ans.padroes.tiss.schemas.CabecalhoTransacao;
import br.gov.ans.padroes.tiss.schemas.CtContratadoDados;
import br.gov.ans.padroes.tiss.schemas.CtLoginSenha;
import br.gov.ans.padroes.tiss.schemas.CtLoteStatus;
import br.gov.ans.padroes.tiss.schemas.CtProtocoloSolicitacaoStatus;
import br.gov.ans.padroes.tiss.schemas.DmTipoTransacao;
import br.gov.ans.padroes.tiss.schemas.LoteGuiasWS;
import br.gov.ans.padroes.tiss.schemas.ProtocoloRecebimentoWS;
import br.gov.ans.padroes.tiss.schemas.SituacaoProtocoloWS;
import br.gov.ans.padroes.tiss.schemas.SolicitacaoStatusProtocoloWS;

public class TissClient {
    static final String FIXED_HASH = "tiss.hash.fixed";

    /** Stamps *WS/hash of every outgoing request; the request context's tiss.hash.fixed instead. */
    public static class TissHash implements SOAPHandler<SOAPMessageContext> {
        public boolean handleMessage(SOAPMessageContext context) {
            if (!(Boolean) context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY)) {
                return true;
            }
            try {
                Element message = firstElement(context.getMessage().getSOAPBody());
                StringBuilder values = new StringBuilder();
                Element hash = null;
                for (Node child = message.getFirstChild(); child != null; child = child.getNextSibling()) {
                    if (!(child instanceof Element)) {
                        continue;
                    }
                    if ("hash".equals(child.getLocalName())) {
                        hash = (Element) child;
                    } else {
                        leafValues((Element) child, values);
                    }
                }
                String fixed = (String) context.get(FIXED_HASH);
                hash.setTextContent(fixed != null ? fixed : md5(values.toString()));
                context.getMessage().saveChanges();
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
            return true;
        }

        public boolean handleFault(SOAPMessageContext context) { return true; }
        public void close(MessageContext context) { }
        public Set<QName> getHeaders() { return Collections.emptySet(); }
    }

    static Element firstElement(Node parent) {
        for (Node child = parent.getFirstChild(); child != null; child = child.getNextSibling()) {
            if (child instanceof Element) {
                return (Element) child;
            }
        }
        return null;
    }

    static void leafValues(Element element, StringBuilder out) {
        boolean leaf = true;
        for (Node child = element.getFirstChild(); child != null; child = child.getNextSibling()) {
            if (child instanceof Element) {
                leaf = false;
                leafValues((Element) child, out);
            }
        }
        if (leaf) {
            out.append(element.getTextContent());
        }
    }

    static String md5(String text) throws Exception {
        byte[] digest = MessageDigest.getInstance("MD5").digest(text.getBytes(StandardCharsets.UTF_8));
        return String.format("%032x", new BigInteger(1, digest));
    }

    static <T> T withHash(T port) {
        List<Handler> chain = ((BindingProvider) port).getBinding().getHandlerChain();
        chain.add(new TissHash());
        ((BindingProvider) port).getBinding().setHandlerChain(chain);
        return port;
    }

    static SolicitacaoStatusProtocoloWS statusRequest(Properties plan, String sequencial, String senha,
                                                      String protocolo) throws Exception {
        CabecalhoTransacao cabecalho = new CabecalhoTransacao();
        CabecalhoTransacao.IdentificacaoTransacao id = new CabecalhoTransacao.IdentificacaoTransacao();
        id.setTipoTransacao(DmTipoTransacao.SOLIC_STATUS_PROTOCOLO);
        id.setSequencialTransacao(sequencial);
        DatatypeFactory dates = DatatypeFactory.newInstance();
        id.setDataRegistroTransacao(dates.newXMLGregorianCalendar(plan.getProperty("data")));
        id.setHoraRegistroTransacao(dates.newXMLGregorianCalendar(plan.getProperty("hora")));
        cabecalho.setIdentificacaoTransacao(id);
        CabecalhoTransacao.Origem origem = new CabecalhoTransacao.Origem();
        CabecalhoTransacao.Origem.IdentificacaoPrestador prestador =
            new CabecalhoTransacao.Origem.IdentificacaoPrestador();
        prestador.setCNPJ(plan.getProperty("cnpj"));
        origem.setIdentificacaoPrestador(prestador);
        cabecalho.setOrigem(origem);
        CabecalhoTransacao.Destino destino = new CabecalhoTransacao.Destino();
        destino.setRegistroANS(plan.getProperty("registroANS"));
        cabecalho.setDestino(destino);
        cabecalho.setPadrao(plan.getProperty("padrao"));
        CtLoginSenha login = new CtLoginSenha();
        login.setLoginPrestador(plan.getProperty("login"));
        login.setSenhaPrestador(senha);
        cabecalho.setLoginSenhaPrestador(login);

        CtProtocoloSolicitacaoStatus corpo = new CtProtocoloSolicitacaoStatus();
        CtContratadoDados contratado = new CtContratadoDados();
        contratado.setCnpjContratado(plan.getProperty("cnpj"));
        corpo.setDadosPrestador(contratado);
        corpo.setNumeroProtocolo(protocolo);

        SolicitacaoStatusProtocoloWS request = new SolicitacaoStatusProtocoloWS();
        request.setCabecalho(cabecalho);
        request.setSolicitacaoStatusProtocolo(corpo);
        request.setHash("");
        return request;
    }

    // UTF-8 whatever the locale (JDK 17's System.out follows it): the fault texts are Portuguese.
    static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true,
                                                   StandardCharsets.UTF_8);

    static void print(String key, Object value) {
        OUT.println(key + "=" + String.valueOf(value).replace("\\", "\\\\").replace("\n", "\\n"));
    }

    public static void main(String[] args) throws Exception {
        Properties plan = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            plan.load(new InputStreamReader(in, StandardCharsets.UTF_8));
        }
        tiss.lote.TissLoteGuiasPortType lotes = withHash(
            new tiss.lote.TissLoteGuias(new URL(plan.getProperty("lote.wsdl"))).getTissLoteGuiasPort());
        JAXBElement<LoteGuiasWS> read = JAXBContext.newInstance(LoteGuiasWS.class).createUnmarshaller()
            .unmarshal(new StreamSource(new File(plan.getProperty("lote.file"))), LoteGuiasWS.class);
        ProtocoloRecebimentoWS recebido = lotes.tissLoteGuiasOperation(read.getValue());
        String protocolo = recebido.getRecebimentoLote().getProtocoloRecebimento().getDetalheProtocolo()
            .getNumeroProtocolo();
        print("protocolo", protocolo);

        tiss.status.TissSolicitacaoStatusProtocoloPortType status = withHash(
            new tiss.status.TissSolicitacaoStatusProtocolo(new URL(plan.getProperty("status.wsdl")))
                .getTissSolicitacaoStatusProtocoloPort());
        SituacaoProtocoloWS situacao = status.tissSolicitacaoStatusProtocoloOperation(statusRequest(
            plan, plan.getProperty("sequencial"), plan.getProperty("senha"), protocolo));
        CtLoteStatus detalhe = situacao.getSituacaoProtocolo().getSituacaoDoProtocolo().getLote()
            .getDetalheLote();
        print("status.numeroProtocolo", detalhe.getNumeroProtocolo());
        print("status.statusProtocolo", detalhe.getStatusProtocolo());

        for (String name : plan.getProperty("faults").split(",")) {
            String prefix = "fault." + name + ".";
            ((BindingProvider) status).getRequestContext().put(FIXED_HASH, plan.getProperty(prefix + "hash"));
            try {
                status.tissSolicitacaoStatusProtocoloOperation(statusRequest(
                    plan, plan.getProperty(prefix + "sequencial"),
                    plan.getProperty(prefix + "senha", plan.getProperty("senha")), protocolo));
                print(prefix + "class", "none");
            } catch (tiss.status.TissFault fault) {
                print(prefix + "class", fault.getClass().getName());
                print(prefix + "message", fault.getMessage());
                print(prefix + "tissFault", fault.getFaultInfo().getTissFault().value());
            }
        }
    }
}
