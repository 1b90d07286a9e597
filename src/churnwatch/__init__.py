"""Churnwatch: find the customers about to leave, say why, and make sure someone acts."""

from __future__ import annotations

__version__ = "0.1.0"
