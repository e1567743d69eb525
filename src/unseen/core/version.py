"""The installed version of unseen."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("unseen")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0+unknown"
