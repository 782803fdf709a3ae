"""What stops an adapter: a mistake to fix on the gateway's side (:class:`AdapterError`) or a
crítica the operator would give the provider (:class:`Refused`)."""

from __future__ import annotations

from gateway.message.findings import Finding


class AdapterError(Exception):
    """The adapter cannot do what was asked: a configuration error or a caller's mistake
    (not something to tell the provider: those are :meth:`adapters.base.Adapter.criticas`)."""


class Refused(Exception):
    """The operator would refuse the message as a whole; ``finding`` is the crítica to answer."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding
