"""``python -m registry_admin``: the same as the ``registry-admin`` command."""

from registry_admin.cli import main

raise SystemExit(main())
