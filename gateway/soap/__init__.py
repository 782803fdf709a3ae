"""TISS over SOAP 1.1 and HTTP: the WSGI app, Spyne's service and protocols, the WSDLs; requests go
to a receiver (gateway.inbound's pipeline, or a simulated operator)."""
