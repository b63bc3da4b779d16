"""The demo market: a live world on the local node, traded through the real intake API.

``python manage.py demo_market`` (started by ``make run``) plays the trading platform:

* ``world``: creators publish bots (``POST /api/v1/bots``), subscribers subscribe
  (``POST /api/v1/subscriptions`` returns the agent wallet), agent wallets get SOL and USDC
  collateral in their Drift subaccounts (real Drift deposits by the node's ``localnet_*``
  methods), and the platform becomes each subaccount's Drift delegate;
* ``trading`` and ``stream``: real positions (winners, losers, partial closes, flips' closing
  legs) opened and closed with Drift's ``place_and_take_perp_order`` against the AMM while the
  node's oracles follow the price, each close reported signed over HTTP (``POST
  /api/v1/trade-closes``) with the realized PnL Drift booked for its fill;
* ``splits``: the referral chain above two creators (``POST /api/v1/referrals``), the
  referrers' and the platform treasury's USDC token accounts (one referrer left without one, so
  its legs are carried), and the legs of a split share as the demo's output reads them;
* ``cases``: staged hard cases, so the pages show something true (an IOU for too little SOL
  then paid, a short withdraw, a creator token account created by its first payout, dust
  carried, an invalid creator address refused, a delinquent subscriber, an expired IOU, a share
  split into the platform's and three referral levels' legs);
* ``wallets``: the demo's creator, referrer and subscriber wallets, derived from the seed, so the web
  server can sign Sign-In With Solana messages with them (``views/demo.py``, only with
  ``QV_DEMO=1``).

Nothing here is on the money path: the engine pays what the demo reports, as for any platform.
"""
