"""SOAP side of the gateway: WSDLs of the TISS web services."""
