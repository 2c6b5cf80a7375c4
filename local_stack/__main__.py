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
    stack.write_state()
    user, password, generated = stack.admin
    print(f"registry listening on {stack.url}  (e.g. docker login {stack.address}; docker push {stack.address}/{user}/app:1.0)")
    print(f"embedded AWS (moto) on {stack.aws_endpoint}; blob pulls redirect there")
    print("state is in memory: stopping this process loses every image and user")
    if os.environ.get("AUTH_ENABLED") == "false":
        print("REGISTRY_AUTH=off: anyone may push, pull and delete anything. For experiments only.")
    elif generated:
        print(f"admin user: {user}  password: {password}  (set REGISTRY_ADMIN_USER / REGISTRY_ADMIN_PASSWORD to choose)")
    else:
        print(f"admin user: {user} (password from REGISTRY_ADMIN_PASSWORD)")
    print(f"new repositories are {os.environ['DEFAULT_VISIBILITY']} (REGISTRY_DEFAULT_VISIBILITY); manage users with: registry-admin --local ...")
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
