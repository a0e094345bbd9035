"""Sampling: which traces are recorded (head) and kept (tail, in a later module).

Only `head` is imported on the hot path, and only its decision for a new
root or a remote parent: local children inherit their parent's flag.
"""

from __future__ import annotations

from .head import AlwaysOff, AlwaysOn, ParentBased, TraceIdRatio, create

__all__ = ["AlwaysOff", "AlwaysOn", "ParentBased", "TraceIdRatio", "create"]
