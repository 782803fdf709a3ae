<?php
// An ERP written with PHP's SoapClient (ext-soap), against the gateway's served WSDLs.
//
// php php_client.php PLAN.json  ->  one JSON object on stdout.
// PLAN: lote_wsdl, status_wsdl (URLs), lote_xml (a loteGuiasWS element built and hashed
// elsewhere, UTF-8: sent as it is, SoapVar XSD_ANYXML), cabecalho (values of the status request's
// cabecalho), faults (cases: {name, senha_md5?, hash?}).
// The status requests are built here as PHP arrays in the schema's order, as an ERP would, and
// their TISS hash is the MD5 of the arrays' values in that order, in UTF-8 (what SoapClient
// sends). Needs ext-soap only (Debian php-cli php-soap; no ext-dom).

function leaf_values(array $values): string
{
    $text = '';
    foreach ($values as $value) {
        $text .= is_array($value) ? leaf_values($value) : (string) $value;
    }
    return $text;
}

function hashed(array $request, ?string $fixed = null): array
{
    unset($request['hash']);
    $request['hash'] = $fixed ?? md5(leaf_values($request));  // values in document order, UTF-8
    return $request;
}

function client(string $wsdl): SoapClient
{
    return new SoapClient($wsdl, ['cache_wsdl' => WSDL_CACHE_NONE, 'exceptions' => true, 'trace' => true,
                                  'connection_timeout' => 30]);
}

function status_request(array $cab, string $protocolo, string $senha): array
{
    return [
        'cabecalho' => [
            'identificacaoTransacao' => [
                'tipoTransacao' => 'SOLIC_STATUS_PROTOCOLO',
                'sequencialTransacao' => $cab['sequencial'],
                'dataRegistroTransacao' => $cab['data'],
                'horaRegistroTransacao' => $cab['hora'],
            ],
            'origem' => ['identificacaoPrestador' => ['CNPJ' => $cab['cnpj']]],
            'destino' => ['registroANS' => $cab['registro_ans']],
            'Padrao' => $cab['padrao'],
            'loginSenhaPrestador' => ['loginPrestador' => $cab['login'], 'senhaPrestador' => $senha],
        ],
        'solicitacaoStatusProtocolo' => [
            'dadosPrestador' => ['cnpjContratado' => $cab['cnpj']],
            'numeroProtocolo' => $protocolo,
        ],
    ];
}

function fault_of(SoapFault $fault): array
{
    return [
        'class' => get_class($fault),
        'faultcode' => $fault->faultcode,
        'faultstring' => $fault->faultstring,
        'tissFault' => $fault->detail->tissFaultWS->tissFault ?? null,
    ];
}

$plan = json_decode(file_get_contents($argv[1]), true, 512, JSON_THROW_ON_ERROR);
$out = ['php' => PHP_VERSION];
try {
    $lote = client($plan['lote_wsdl']);
    $answer = $lote->tissLoteGuias_Operation(new SoapVar($plan['lote_xml'], XSD_ANYXML));
    $out['protocolo'] = $answer->recebimentoLote->protocoloRecebimento->detalheProtocolo->numeroProtocolo;

    $status = client($plan['status_wsdl']);
    $cab = $plan['cabecalho'];
    $situacao = $status->tissSolicitacaoStatusProtocolo_Operation(
        hashed(status_request($cab, $out['protocolo'], $cab['senha_md5'])));
    $detalhe = $situacao->situacaoProtocolo->situacaoDoProtocolo->lote->detalheLote;
    $out['status'] = ['numeroProtocolo' => $detalhe->numeroProtocolo,
                      'statusProtocolo' => $detalhe->statusProtocolo];
    $out['status_sent'] = $status->__getLastRequest();

    $out['faults'] = [];
    foreach ($plan['faults'] as $case) {
        $cab['sequencial'] = $case['sequencial'];
        try {
            $status->tissSolicitacaoStatusProtocolo_Operation(hashed(
                status_request($cab, $out['protocolo'], $case['senha_md5'] ?? $cab['senha_md5']),
                $case['hash'] ?? null));
            $out['faults'][$case['name']] = null;
        } catch (SoapFault $fault) {
            $out['faults'][$case['name']] = fault_of($fault) + [
                'http' => strtok($status->__getLastResponseHeaders() ?? '', "\r\n")];
        }
    }
} catch (Throwable $error) {
    $out['error'] = get_class($error) . ': ' . $error->getMessage();
    if ($error instanceof SoapFault) {
        $out['error_fault'] = fault_of($error);
    }
}
echo json_encode($out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRETTY_PRINT), "\n";
