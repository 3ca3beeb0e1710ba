"""What a network is made of: the layer catalogue, argument checks, the torch modules, building, layer paths and edits of the spec."""
