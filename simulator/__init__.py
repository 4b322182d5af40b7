"""gridcosim engine: models, decomposition, network validation, co-simulation, CLI."""
