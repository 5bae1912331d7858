"""kopf glue: handlers that enqueue, a work queue, and the reconcile that reads, calls the core,
applies and writes status."""
