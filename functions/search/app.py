"""The search function: ``docker search`` (/v1/_ping, /v1/search) and the repository
management API (/api/v1/repositories/<name>: description, stars, official flag, immutable tags, retention policy,
stored bytes) and namespaces' storage usage and quotas (/api/v1/namespaces/<namespace>/usage, /quota)."""

from registry.http import make_handler
from registry.services import repositories, search


def _retention(request, **params):
    """The retention policy route's GET or PUT. Imported here: no other route of this function
    needs the policy module (INIT time, issue 15: cold starts)."""
    from registry.services import retention

    return {"GET": retention.get, "PUT": retention.put}[request.method](request, **params)


lambda_handler = make_handler(
    "search",
    {
        "search.ping": {"GET": search.ping},
        "search": {"GET": search.search},
        "repo": {"GET": repositories.get},
        "repo.description": {"PUT": repositories.put_description},
        "repo.star": {"PUT": repositories.star, "DELETE": repositories.star},
        "repo.official": {"PUT": repositories.put_official},
        "repo.immutable": {"PUT": repositories.put_immutable},
        "namespace.usage": {"GET": repositories.get_namespace_usage},
        "namespace.quota": {"PUT": repositories.put_namespace_quota},
        "repo.retention": {"GET": _retention, "PUT": _retention},
    },
)
