"""Delivery to operators: the state of an entrega, the outbox, the workers, the operator client
(one endpoint per operator and version), protocol tracking, the real-time relay, and the operators'
protocol numbers in the texts a provider reads turned into the gateway's (numeros)."""
