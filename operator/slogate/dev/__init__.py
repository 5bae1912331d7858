"""The local control plane for tests, benchmarks and the demo (``slogate dev``).

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok built from the Go module
proxy (``hack/build-bins.sh``), GPU-shaped fake nodes, third-party CRDs from their own Go modules,
Debian's Prometheus, and a bridge that gives every simulated pod a model-server simulator scraped
by Prometheus with the pod's labels; ``demo`` is ``make demo`` (``python -m slogate.dev.demo``).
Nothing here is imported by the operator itself, and the operator image leaves this package out
(as it does ``slogate.sim``): ``slogate dev`` then exits 2 and says so.
"""
