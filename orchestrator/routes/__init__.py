"""HTTP routes, one module per area, each a blueprint factory taking its dependencies."""
