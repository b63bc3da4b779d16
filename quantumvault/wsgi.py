"""WSGI entry point (gunicorn quantumvault.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantumvault.settings")
application = get_wsgi_application()
