"""Database utilities below the models: plain-SQL bulk writes (``bulk``)."""
