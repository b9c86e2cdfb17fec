"""Training data: reference synthesis and image-folder datasets (imported by training code only,
never by inference)."""
