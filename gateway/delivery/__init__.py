"""Delivery to operators: the state of an entrega, the outbox, the workers, the operator client,
protocol tracking."""
