"""Python logging set up for where the process runs."""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["setup_logging"]

_MARK = "_mlinfra_platform_handler"
#: Notebooks show standard error in red and AzureML collects standard output into the job log.
_STDOUT_PLATFORMS = {"colab", "kaggle", "azureml"}


def setup_logging(platform: str, level: int | str = "INFO") -> logging.Logger:
    """Send mlinfra's log records to the platform's console, with UTC timestamps.

    Standard error locally, standard output on Colab, Kaggle (notebooks show standard error in
    red) and AzureML (its job log). Calling it again replaces the handler it added instead of
    adding another one.

    Returns:
        The ``mlinfra`` logger.
    """
    logger = logging.getLogger("mlinfra")
    for handler in list(logger.handlers):
        if getattr(handler, _MARK, False):
            logger.removeHandler(handler)
    stream = sys.stdout if platform in _STDOUT_PLATFORMS else sys.stderr
    handler = logging.StreamHandler(stream)
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    setattr(handler, _MARK, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger
