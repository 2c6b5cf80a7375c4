"""``python -m registry_proxy``: the same as the ``registry-proxy`` command."""

from registry_proxy.cli import main

raise SystemExit(main())
