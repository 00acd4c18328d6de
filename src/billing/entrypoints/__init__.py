"""How the service is started: the gRPC server (and its worker processes) and each `billing`
command, every one built on the composition root (billing.bootstrap)."""
