"""Tenant secrets in Secrets Manager, for the admin API and the CLI (the one adapter both use).

Each method is one Secrets Manager action, so the admin role's policy lists exactly these:
DescribeSecret, GetSecretValue, CreateSecret, PutSecretValue, RestoreSecret, DeleteSecret, all on
`{prefix}/tenants/*` (tests/template checks it).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from ..aws import AwsAdapter
from .ports import SecretState


class SecretsManagerStore(AwsAdapter):
    service: ClassVar[str] = "secretsmanager"

    def describe(self, name: str) -> SecretState:
        try:
            answer = self.client.describe_secret(SecretId=name)
        except self.client.exceptions.ResourceNotFoundException:
            return SecretState(False)
        return SecretState(True, answer.get("DeletedDate"))

    def read(self, name: str) -> str:
        return str(self.client.get_secret_value(SecretId=name)["SecretString"])

    def create(self, name: str, value: str, description: str) -> None:
        self.client.create_secret(Name=name, SecretString=value, Description=description)

    def update(self, name: str, value: str) -> None:
        self.client.put_secret_value(SecretId=name, SecretString=value)

    def restore(self, name: str) -> None:
        self.client.restore_secret(SecretId=name)

    def delete(self, name: str, recovery_days: int | None) -> datetime | None:
        """`recovery_days` None: at once, without recovery. Returns when it will be gone."""
        if recovery_days is None:
            answer = self.client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        else:
            answer = self.client.delete_secret(SecretId=name, RecoveryWindowInDays=recovery_days)
        deletion: datetime | None = answer.get("DeletionDate")
        return deletion
