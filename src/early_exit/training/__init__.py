"""Training: the loop, resume state, batching, device and seeding, fine-tuning a run."""
