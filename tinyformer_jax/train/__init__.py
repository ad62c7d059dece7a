"""Training: data-parallel steps, checkpoints that resume, metrics, evaluation."""
