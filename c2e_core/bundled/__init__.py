"""Weights shipped with the package; ``manifest.json`` names them (see ``c2e weights list``)."""
