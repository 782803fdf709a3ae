"""Delivery to operators: the outbox, the workers, the operator client, protocol tracking."""
