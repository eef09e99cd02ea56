"""Early exiting for pretrained language models: multi-exit models, recipes, policies over stored logits."""

__version__ = "0.1.0"
