"""The Color2Embed GIMP plug-in's modules (``color2embed.py`` is the PDB procedure).

``options``, ``layouts`` and ``settings`` are standard library only; ``colorize`` needs GIMP.
The worker client, ``c2e_client``, is copied next to ``color2embed.py`` at install time.
"""
