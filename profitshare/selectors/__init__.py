"""Read-only queries (HackSoft selectors) for the API and the pages: they never write.

``closes.close_status`` (one close's payout), ``ious.list_ious`` / ``ious.iou_exists`` (debts),
``referrals.referral_chain`` (a wallet's referrers, nearest first).
"""
