"""A worker billing its AI work to the second over MeterSession (README, "Metered sessions").

    python examples/meter_session.py --target localhost:50051 --user alice --session job-7 --seconds 75

Needs a service key: BILLING_KEY_ID and BILLING_KEY_SECRET (`billing keys create --scope service`).
The "work" here is a loop that reports every second; a real worker reports as it goes and stops
when the answer says the held time is running out (`remaining_seconds`) and `exhausted` is set.
"""

from __future__ import annotations

import argparse
import os
import queue
import threading
import time

import grpc

from billing.v1 import billing_service_pb2_grpc, metered_sessions_pb2 as pb


def run(target: str, user_id: str, session_id: str, work_seconds: int, tick_seconds: float = 1.0) -> pb.MeterSessionResponse:
    outbox: queue.Queue[pb.MeterSessionRequest | None] = queue.Queue()

    def requests():
        while (message := outbox.get()) is not None:
            yield message

    bearer = (("authorization", f"Bearer {os.environ['BILLING_KEY_ID']}.{os.environ['BILLING_KEY_SECRET']}"),)
    with grpc.insecure_channel(target) as channel:
        answers = billing_service_pb2_grpc.BillingServiceStub(channel).MeterSession(requests(), metadata=bearer)
        outbox.put(pb.MeterSessionRequest(open=pb.MeterSessionOpen(
            user_id=user_id, session_id=session_id, operation="build", block_seconds=60)))
        answer = next(answers)
        started = time.monotonic()
        elapsed = 0
        while elapsed < work_seconds and answer.remaining_seconds > 0:
            time.sleep(tick_seconds)  # ... one second of AI work ...
            elapsed += 1
            outbox.put(pb.MeterSessionRequest(report=pb.MeterSessionReport(elapsed_seconds=elapsed)))
            answer = next(answers)
            if answer.HasField("exhausted") and answer.remaining_seconds <= 5:
                print(f"balance short by {answer.exhausted.deficit_seconds}s: stopping at the held time")
        outbox.put(pb.MeterSessionRequest(done=pb.MeterSessionDone(elapsed_seconds=elapsed)))
        final = next(answers)
        outbox.put(None)
        threading.Thread(target=_drain, args=(answers,), daemon=True).start()
        print(f"settled={final.settled} charged {final.committed_seconds}s in {time.monotonic() - started:.1f}s")
        return final


def _drain(answers) -> None:
    """Reads the stream's end; the channel closing under it (the `with` above ending) is that end too."""
    try:
        for _ in answers:
            pass
    except grpc.RpcError:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--user", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    run(args.target, args.user, args.session, args.seconds)
