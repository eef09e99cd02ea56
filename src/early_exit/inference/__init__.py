"""Inference: the predict pass and the stored exit outputs it writes."""
