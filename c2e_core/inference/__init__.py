"""Colorizing with a built model: :mod:`.pipeline` (``Colorizer``), resizing and guided
upsampling, the built-in processing steps, int8 quantization, the classical baselines, device
choice and progress reporting.

Never imports :mod:`c2e_core.training` (an import-linter contract). Importing this package
imports none of its modules (no torch).
"""
