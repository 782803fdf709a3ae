"""The web console under ``/console``: the people running the gateway (and each provider, for its
own data) see lotes with their status lights, críticas, messages, deliveries, the capa do lote,
demonstrativos, dead-lettered deliveries and charts, server-rendered in Portuguese.

Modules: ``app`` (WSGI routing and the pages), ``web`` (requests, responses, cookies, headers),
``auth`` (passwords with lockout, sessions, CSRF), ``usuarios`` (console users), ``queries``
(read-only SQL of the pages), ``desfecho`` (what became of a lote's guides, its resubmissions:
shared with the ``protocolo``/``lote`` commands), ``capa`` (the figures of a lote from its stored messages),
``demonstrativos`` (the main figures of a stored demonstrativo), ``xml_view`` (stored XML shown
masked and indented), ``situacao`` (status lights), ``charts`` (inline SVG), ``formatos``
(Brazilian dates, money, masked card numbers).
"""
