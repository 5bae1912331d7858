"""slogate: a Kubernetes operator that serves LLMs (vLLM, TGI) behind SLO-gated progressive delivery.

The package is layered: ``api`` (pydantic models, the single source of truth for the CRD),
``core`` (pure decisions), ``adapters`` (Kubernetes, Prometheus I/O), ``controller`` (kopf glue),
``cli`` (the ``slogate`` command), then the development tools, which the operator never imports and
its image leaves out: ``sim`` (model-server simulator) and ``dev`` (the local control plane, the
demo). Importing the package itself imports nothing heavy.
"""

__version__ = "0.1.0"
