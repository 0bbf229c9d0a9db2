"""Governance: principals, roles and privileges; row filters and column masks, enforced at one place.

One module per concept: ``privileges`` (names, objects, what each statement needs), ``principals``
(users, attributes, groups), ``roles``, ``grants`` (privileges and owners), ``functions`` and
``policies`` (policy functions, row filters, masks), ``access`` (access requests, approvers,
tags on tables, self-service rules), ``webhooks`` (notifications), ``store`` (the tables and the policy version),
``state`` (resolution), ``enforce`` (the reference pipeline's policy, REST), ``hooks`` (the commit
path), ``lake_governance`` (``lake.governance``), ``audit`` (the audit log, ``system.audit_log``).
See docs/governance.md.
"""

from typing import Any

from wharf.governance import (
    audit,  # noqa: F401  (registers the audit commit gate and system.audit_log)
    hooks,  # noqa: F401  (registers the governance commit gate)
    webhooks,  # noqa: F401  (notifies webhooks of access decisions)
)
from wharf.governance.enforce import GovernancePolicy
from wharf.governance.store import GovernanceStore, store_for


def policy_version(catalog: Any, owner: str) -> int:
    """The lake's current policy version (``lake.governance.policy_version()`` from a handle).

    It moves with every change to grants, roles, memberships, user attributes or policies; a
    cache of results computed for a principal keys on (principal, version), so a cached answer is
    never served after a change. The lake owner is never governed: its answers do not depend on it.
    """
    return store_for(catalog, owner).version()


__all__ = ["GovernancePolicy", "GovernanceStore", "policy_version", "store_for"]
