"""dppo-embodied core: the small, torch-free vocabulary shared by every package."""

__version__ = "0.1.0"
