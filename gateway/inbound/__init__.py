"""The gateway's own answers to TISS web-service requests (acting for the destination operator)."""
