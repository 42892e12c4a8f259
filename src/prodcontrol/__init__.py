"""prodcontrol: production controls for ML models, on the schedulers MLOps teams already run."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("prodcontrol")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
