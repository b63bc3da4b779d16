"""The HTMX pages (thin views: parse the request, call a selector or a service, render).

``auth`` (Sign-In With Solana), ``creator`` (earnings dashboard), ``subscriber`` (trade
history), ``console`` (admin console, Django staff), ``marketplace`` (public bot snippet).
"""
