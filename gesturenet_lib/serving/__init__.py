"""`gesturenet serve`: an exported model behind KServe's model server (REST and gRPC, the v1
and Open Inference (v2) protocols), run with the same backends and preprocessing as
`gesturenet inference`.

- ``payloads``: request bodies -> arrays and encoded images, with one-line reasons for 4xx;
- ``models``: the two KServe models, ``<name>`` (tensors, as the Triton entry) and
  ``<name>-image`` (encoded images in, class out);
- ``server``: loading in the background (readiness is false until then), the body limit,
  KServe's flags and graceful shutdown.

Only ``server`` imports KServe at module level of its callers; the CLI imports it when called.
"""
