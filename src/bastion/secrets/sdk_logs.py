"""Keep SDK debug logs from printing secret payloads.

At DEBUG, botocore logs every response body and the Google REST transport logs response payloads;
from a secret manager those bodies are the secrets. The providers call `drop_payload_logs` when
they build a client, so turning on debug logging for troubleshooting cannot leak a key.
"""

from __future__ import annotations

import logging

AWS_PAYLOAD_LOGGER = "botocore.parsers"
GCP_PAYLOAD_LOGGER = "google.cloud.secretmanager_v1.services.secret_manager_service.transports.rest"


class DropDebugRecords(logging.Filter):
    """Passes INFO and above; the payload-bearing records of these loggers are all DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def drop_payload_logs(logger_name: str) -> None:
    """Install the filter on `logger_name` once; idempotent."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, DropDebugRecords) for existing in logger.filters):
        logger.addFilter(DropDebugRecords())
