"""The embedded AWS emulator: moto's server, with DynamoDB requests applied one at a time.

DynamoDB applies every write, and every ``TransactWriteItems`` as a whole, in
isolation: transactions are serializable with respect to each other and to
single-item writes
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-isolation).
moto's server answers requests on threads without that isolation: its
``TransactWriteItems`` backs up the whole table and, when a condition fails,
puts the backup back, erasing what other requests wrote meanwhile; and a
request reading a table while another writes it can fail with "dictionary
changed size during iteration" (a 500). Two first pushes of one repository (a
client pushing an index's platform manifests in parallel) race exactly there:
one commits the catalog item while the other's transaction is cancelled on it.
Serialising the DynamoDB requests gives the emulator the isolation the service
has (a little more: it never answers ``TransactionConflict``, which
``registry.storage.dynamo.transact`` retries). Other services are unchanged.
"""

from __future__ import annotations

import threading

from werkzeug.serving import make_server

DYNAMODB_TARGET = "DynamoDB_"  # X-Amz-Target of the DynamoDB JSON protocol, e.g. DynamoDB_20120810.TransactWriteItems


class SerialDynamoDB:
    """WSGI middleware: one DynamoDB request at a time through ``app``, whole (the response is built inside)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


class Emulator:
    """moto's server on ``host`` (a free port), in a daemon thread; ``endpoint`` is its URL."""

    def __init__(self, host: str = "127.0.0.1"):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.server = make_server(host, 0, SerialDynamoDB(DomainDispatcherApplication(create_backend_app)), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Emulator":
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()
