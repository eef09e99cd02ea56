"""Early exiting for pretrained language models: multi-exit models, recipes, exit policies."""

__version__ = "0.1.0"
