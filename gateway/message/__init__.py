"""The TISS message core every side uses (the gateway, the adapters, the simulated operators):
safe reading, schemas and validation, the epílogo hash, findings and faults, the response builders,
the readers of a lote, a conta and an operator's situação, and the TISS tables. It imports no other
part of the project."""
