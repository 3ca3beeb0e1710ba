"""Looking inside a model: probes (optimizer state, a neuron, decision grids) and the numerical gradient check."""
