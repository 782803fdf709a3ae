"""Client stacks other than zeep that ERPs use, driven by tests/process/test_interop.py: PHP's
SoapClient (php_client.php), Java JAX-WS through wsimport's classes (TissClient.java), suds
(suds_client.py); stacks.py installs and builds them."""
