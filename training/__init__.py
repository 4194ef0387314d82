"""Training half of livedroid: dataset preparation, fine-tuning, evaluation, export (needs the `train` extra)."""
