"""Training: losses, pretrained backbones (imported lazily, never by the inference path)."""
