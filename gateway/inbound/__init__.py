"""The gateway's inbound side: every TISS request a provider posts is checked, stored and answered
(acting for the destination operator) or relayed to it (gateway.delivery.sync_relay)."""
