"""The pure core: desired state and decisions as functions over plain data.

Nothing in this package performs I/O, reads the clock or imports kopf, the Kubernetes client or
Prometheus: it imports only the standard library and ``slogate.api``. Time is an argument.
The controller (``slogate.controller``) calls these functions and applies what they return.
"""
