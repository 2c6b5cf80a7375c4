"""The protocol, one module per resource. Each handler takes (request, **path params)
and returns a ``Response`` or raises ``RegistryError``; storage goes through
``registry.storage`` only."""
