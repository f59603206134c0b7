"""Load generator for Ticketero's NFR scenarios (``python -m loadgen``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ticketero-nfr")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
