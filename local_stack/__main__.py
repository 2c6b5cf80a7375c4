"""``python -m local_stack``: serve the registry on 127.0.0.1:${PORT:-5000} until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading

from local_stack.gateway import Limits
from local_stack.stack import LocalStack


def main() -> int:
    port = int(os.environ.get("PORT", "5000"))
    limits_off = os.environ.get("REGISTRY_LOCAL_LIMITS", "on").lower() == "off"
    stack = LocalStack(port=port, limits=Limits.off() if limits_off else Limits())
    stack.start()
    print(f"registry listening on {stack.url}  (e.g. skopeo copy ... docker://{stack.address}/team/app:1.0 --dest-tls-verify=false)")
    print(f"embedded AWS (moto) on {stack.aws_endpoint}; blob pulls redirect there")
    print("state is in memory: stopping this process loses every image")
    if limits_off:
        print("REGISTRY_LOCAL_LIMITS=off: AWS request, payload and timeout limits are NOT enforced")
    else:
        print("enforcing AWS limits: 10 MB request, 6 MB Lambda event (about 4.7 MB of binary body), 30 s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
