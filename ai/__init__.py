"""App generation: words in, Blueprints out. Imports nothing from the other packages."""
