"""Where reloader plugins have always imported the reloader contract from.

The reloaders themselves live in ``certman.deploy.reloaders``; this name stays so
that third-party reloaders keep working.
"""

from .deploy.reloaders import Deployment, Reloader

__all__ = ["Deployment", "Reloader"]
