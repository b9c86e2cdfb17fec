"""Krita's Qt bindings: PyQt5 in Krita 5, PyQt6 in Krita 6 (code uses scoped enum names)."""

from __future__ import annotations

from typing import Any

try:
    from PyQt5 import QtCore, QtGui, QtWidgets
except ImportError:  # Krita 6
    from PyQt6 import QtCore, QtGui, QtWidgets

__all__ = ["QtCore", "QtGui", "QtWidgets", "exec_dialog"]


def exec_dialog(dialog: Any) -> Any:
    """Run a modal dialog (``exec`` in PyQt6 and recent PyQt5, ``exec_`` in older PyQt5)."""
    run = getattr(dialog, "exec", None) or dialog.exec_
    return run()
