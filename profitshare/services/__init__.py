"""Business logic (HackSoft style): every write of the profit-share domain goes through here.

``bots`` and ``subscriptions`` (terms), ``intake`` (closes reported by the platform),
``policy`` (share arithmetic), ``splits`` (a share's legs), ``referrals`` (referral links),
``engine`` (the payout pipeline), ``ious`` (debts and retries),
``resolver`` (stale attempts, by signature status), ``guards`` (withdraw / delete checks),
``locks`` (one payout at a time per agent wallet), ``audit`` and ``alerts``.
"""
