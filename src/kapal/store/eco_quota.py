"""Which accounts used up this month's eco dyno hours: plain SQL over the DB-API, for the
agent (their eco dynos sleep) and the router (their eco apps answer H82)."""

from __future__ import annotations

from kapal.store.dbapi import Transaction


def exhausted_owners(tx: Transaction, quota: float, month: str) -> set[str]:
    """The accounts whose eco dyno seconds in `month` reached `quota` (every account that owns
    an app when the quota is 0: no eco dyno hours at all)."""
    if quota <= 0:
        return {owner for (owner,) in tx.rows("SELECT DISTINCT owner_id FROM apps")}
    rows = tx.rows(
        "SELECT user_id, sum(seconds) FROM eco_usage WHERE month = ? GROUP BY user_id", month
    )
    return {user_id for user_id, used in rows if float(used) >= quota}
