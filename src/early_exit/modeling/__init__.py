"""The model: backbone walk, multi-exit model, checkpoint formats, FLOPs."""
