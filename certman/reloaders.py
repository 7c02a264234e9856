"""Where reloader plugins have always imported the reloader contract from.

The reloaders themselves live in ``certman.deploy.reloaders``; this name stays so
that third-party reloaders keep working. ``VerifySettings`` and ``reloader_settings``
give a third-party reloader the settings shape of the built-ins (docs/proxies.md).
"""

from .deploy.reloaders import Deployment, Reloader
from .deploy.served import VerifySettings, reloader_settings

__all__ = ["Deployment", "Reloader", "VerifySettings", "reloader_settings"]
