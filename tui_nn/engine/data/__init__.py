"""Data: tensors from the spec, targets matched to the loss, generated data sets, CSV files, the train/test split and pasted text."""
