"""gunicorn settings for the example app:
``gunicorn -c example_app/gunicorn.conf.py 'example_app:create_app()'``.

Every open page holds an event stream (a request that stays open), so the
workers are threaded: a ``sync`` worker would serve one stream and nothing
else, and the extension refuses streams there (the pages then poll).
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
# streams each take a thread; the extension's cap (STATEMGR_EVENTS_STREAMS,
# 100 by default) keeps a few of them for ordinary requests
threads = int(os.environ.get("THREADS", "128"))
# a stream is a long request, not a stuck worker
timeout = 60
graceful_timeout = 5
