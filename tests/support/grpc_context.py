"""A stand-in for grpc.aio.ServicerContext that records what a call was aborted with."""

from __future__ import annotations

import grpc


class AbortingContext:
    def __init__(self):
        self.aborted = None  # (code, message, trailing metadata as a dict)

    async def abort(self, code, message, trailing_metadata=()):
        self.aborted = (code, message, dict(trailing_metadata))
        raise grpc.aio.AbortError()
