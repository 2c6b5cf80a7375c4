"""``registry-proxy``: a registry endpoint on the user's machine that lets every client push layers of any size.

API Gateway and Lambda carry about 4.7 MB of body per request, and docker, skopeo, podman, buildah,
containerd, crane and oras send each layer in one request. The proxy forwards every request to the
registry as it is, except blob uploads: it reads the client's body as it arrives, cuts it into parts
and uploads them straight to S3 through the registry's direct-upload extension (presigned
``UploadPart`` URLs), then completes the upload with the client's own digest. See docs/proxy.md.

Modules: ``cli`` (command line), ``app`` (the aiohttp application and its routing), ``forward``
(pass-through), ``headers`` (hop-by-hop headers, ``Location`` and ``WWW-Authenticate`` rewriting),
``uploads`` (upload sessions), ``parts`` (part sizes and cutting a stream into parts), ``direct``
(the registry's direct-upload extension and S3 part uploads), ``retry`` (backoff), ``errors``
(OCI error responses), ``settings``.
"""
