"""Routers of the intake API, one module per resource. Views are thin: parse (schemas), call
one service or selector, render; errors become HTTP answers in ``profitshare.api``."""
