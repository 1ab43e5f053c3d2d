"""Architectures, training, fine-tuning and the model version registry."""
