"""The command-line layer: parse, call the core, hand the result to `output`."""
