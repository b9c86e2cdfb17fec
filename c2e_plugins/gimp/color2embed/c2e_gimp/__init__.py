"""The Color2Embed GIMP plug-in's modules (``color2embed.py`` is the PDB procedure).

``options`` and ``layouts`` are standard library only; ``colorize`` needs GIMP. The shared
client package, ``c2e_client`` (worker protocol, option checks, worker start-up, settings), is
copied next to ``color2embed.py`` at install time.
"""
