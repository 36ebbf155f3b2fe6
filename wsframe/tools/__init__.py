"""Tools on top of the engine: the CLI, explain and trace, bench, the demo, the layer graph."""
