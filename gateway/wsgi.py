"""The gateway as a WSGI application, configured by the environment:

    gunicorn -c gunicorn.conf.py gateway.wsgi:application

``TISS_GATEWAY_CONFIG`` names the TOML config (else ``<home>/config.toml``),
``TISS_GATEWAY_DATABASE_URL`` overrides its ``database_url``, ``TISS_GATEWAY_HOME`` is the data
directory. The database is migrated and the config's providers seeded once, by gunicorn.conf.py's
``on_starting`` hook in the arbiter; under another WSGI server (or gunicorn without that file)
each process does it when it imports this module (safe, if slower to start).
"""

import os

from gateway import deploy_settings, server
from gateway.config import load_config
from gateway.storage import db

config = load_config()
_url = db.database_url(config) if os.environ.get(deploy_settings.PREPARED_ENV) else server.prepare(config)
application = server.load_app(config, _url)
