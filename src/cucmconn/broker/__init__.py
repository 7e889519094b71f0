"""A real ActiveMQ Classic broker, run locally from Debian's package, for tests and development."""

from __future__ import annotations

from .activemq import (
    ACTIVEMQ_DEFAULTS,
    ACTIVEMQ_HOME,
    ACTIVEMQ_JAR,
    TRANSPORT_PROFILES,
    TUNED,
    ActiveMQUnavailable,
    BrokerStatus,
    LocalActiveMQ,
    LocalBrokerError,
    default_base_dir,
    ensure_installed,
    find_java,
    free_port,
    free_ports,
)
from .cli import main

__all__ = [
    "ACTIVEMQ_DEFAULTS",
    "ACTIVEMQ_HOME",
    "ACTIVEMQ_JAR",
    "TRANSPORT_PROFILES",
    "TUNED",
    "ActiveMQUnavailable",
    "BrokerStatus",
    "LocalActiveMQ",
    "LocalBrokerError",
    "default_base_dir",
    "ensure_installed",
    "find_java",
    "free_port",
    "free_ports",
    "main",
]
