"""The operator profiles, one TOML file per simulated operator (read by simulator.profile)."""
