"""The version of httpool, written here and nowhere else.

``httpool.__version__`` re-exports it, and the build backend reads it for the
package metadata (``[tool.hatch.version]`` in pyproject.toml), so an installed
httpool reports the same version through ``importlib.metadata``.
"""

__version__ = "0.1.0"
