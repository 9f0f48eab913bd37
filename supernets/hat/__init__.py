"""HAT SuperTransformers (machine translation) in plain PyTorch."""
