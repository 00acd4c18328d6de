"""OperatorService (issue 23): the operator console's API. Each method maps its request to a use
case (service/operator_*.py) and its answer back (api/operator_mapping.py); a method not yet built
answers UNIMPLEMENTED (the generated base class)."""

from __future__ import annotations

from billing.service.dependencies import Dependencies
from billing.v1 import operator_service_pb2_grpc


class OperatorServicer(operator_service_pb2_grpc.OperatorServiceServicer):
    def __init__(self, deps: Dependencies):
        self._deps = deps
