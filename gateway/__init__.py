"""tiss-gateway: SOAP integration gateway for the ANS TISS standard."""

__version__ = "0.1.0"
