"""Digital signature of TISS messages: sandbox ICP-Brasil-shaped certificates (``pki``) and
enveloped XMLDSig sign/verify of a ``*WS`` element or ``mensagemTISS`` (``xmldsig``)."""
