"""Governance: principals, roles and privileges; row filters and column masks, enforced at one place.

One module per concept: ``privileges`` (names, objects, what each statement needs), ``principals``
(users, attributes, groups), ``roles``, ``grants`` (privileges and owners), ``functions`` and
``policies`` (policy functions, row filters, masks), ``store`` (the tables and the policy version),
``state`` (resolution), ``enforce`` (the reference pipeline's policy, REST), ``hooks`` (the commit
path), ``lake_governance`` (``lake.governance``). See docs/governance.md.
"""

from wharf.governance import hooks  # noqa: F401  (registers the governance commit gate)
from wharf.governance.enforce import GovernancePolicy
from wharf.governance.store import GovernanceStore, store_for

__all__ = ["GovernancePolicy", "GovernanceStore", "store_for"]
