"""The stores of one process, built once from its Settings: what the API and the worker are given.

app.py builds one :class:`Services` when it is loaded (``create_app``), the worker one when it starts,
the tools one per command.  Each store gets its boto3 clients and the settings here and nowhere else;
stores are made on first use, so a Lambda that never lists history never makes that store.
"""

from __future__ import annotations

import functools

from chalicelib.domain.settings import Settings, load_settings
from chalicelib.stores.apikeys import ApiKeys
from chalicelib.stores.aws import AwsClients
from chalicelib.stores.contexts import ContextStore
from chalicelib.stores.history import JobHistory
from chalicelib.stores.jobs import JobStore
from chalicelib.stores.logs import LogStore
from chalicelib.stores.notifications import Notifications
from chalicelib.stores.queue import JobQueue
from chalicelib.stores.quotas import Quotas
from chalicelib.stores.sealing import Sealer
from chalicelib.stores.triggers import TriggerStore


class Services:
    """The stores over one set of AWS clients and one Settings."""

    def __init__(self, settings: Settings, clients: AwsClients | None = None) -> None:
        self.settings = settings
        self.clients = clients or AwsClients(settings.region)

    @classmethod
    def from_environment(cls) -> Services:
        """Settings read from the environment now, and new clients (an entry point's one call)."""
        return cls(load_settings())

    @functools.cached_property
    def jobs(self) -> JobStore:
        """Job items and their phase changes."""
        return JobStore(self.clients.client("dynamodb"), self.settings, self.notifications, self.quotas)

    @functools.cached_property
    def logs(self) -> LogStore:
        """Job logs."""
        return LogStore(self.clients.client("dynamodb"), self.settings)

    @functools.cached_property
    def queue(self) -> JobQueue:
        """The job queue."""
        return JobQueue(self.clients.client("sqs"), self.settings)

    @functools.cached_property
    def contexts(self) -> ContextStore:
        """Build contexts and uploads in S3."""
        return ContextStore(self.clients.client("s3"), self.settings)

    @functools.cached_property
    def sealing(self) -> Sealer:
        """Job credentials under the job key."""
        return Sealer(self.clients.client("kms"), self.settings)

    @functools.cached_property
    def apikeys(self) -> ApiKeys:
        """API keys."""
        return ApiKeys(self.clients.client("dynamodb"), self.settings)

    @functools.cached_property
    def history(self) -> JobHistory:
        """Owners' job lists."""
        return JobHistory(self.clients.client("dynamodb"), self.settings)

    @functools.cached_property
    def quotas(self) -> Quotas:
        """Per-owner quotas."""
        return Quotas(self.clients.client("dynamodb"), self.settings)

    @functools.cached_property
    def triggers(self) -> TriggerStore:
        """Build triggers and their deliveries."""
        return TriggerStore(self.clients.client("dynamodb"), self.clients.client("kms"), self.settings)

    @functools.cached_property
    def notifications(self) -> Notifications:
        """Notification subscriptions, attempts and queue."""
        return Notifications(
            self.clients.client("dynamodb"),
            self.clients.client("kms"),
            self.clients.quick("sqs"),
            self.clients.client("sqs"),
            self.settings,
        )
