"""Cryptography, and nothing else: password hashing (``senhas``), sandbox ICP-Brasil-shaped
certificates (``pki``) and enveloped XMLDSig sign/verify of a ``*WS`` element or ``mensagemTISS``
(``xmldsig``)."""
