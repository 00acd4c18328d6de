"""The CPU budget's profile aggregation (bench/profile_frames.py): pure functions over py-spy's raw output."""

from bench import cpu_budget
from bench.profile_frames import frame_cost_us, parse_collapsed, short_frame, top_frames

RAW = """\
process 7:"python -m billing.entrypoints.server";_run_once (asyncio/base_events.py);consume (/work/x/src/billing/api/servicer.py);encode (/venv/lib/python3.11/site-packages/google/protobuf/json_format.py) 30
_run_once (asyncio/base_events.py);consume (/work/x/src/billing/api/servicer.py) 10
_run_once (asyncio/base_events.py);get_balance (/work/x/src/billing/api/servicer.py);get_balance (/work/x/src/billing/api/servicer.py) 20
_run_once (asyncio/base_events.py) 40
not a sample line
"""


def test_raw_lines_become_stacks_root_first_with_their_counts():
    stacks = parse_collapsed(RAW)

    assert len(stacks) == 4  # the line without a count is not a sample
    assert stacks[1] == (("_run_once (asyncio/base_events.py)", "consume (/work/x/src/billing/api/servicer.py)"), 10)


def test_frame_paths_start_at_the_package():
    assert short_frame("consume (/work/x/src/billing/api/servicer.py)") == "consume (billing/api/servicer.py)"
    assert short_frame("encode (/v/lib/python3.11/site-packages/google/protobuf/json_format.py)") == \
        "encode (google/protobuf/json_format.py)"
    assert short_frame("select (/usr/lib/python3.11/selectors.py)") == "select (selectors.py)"
    assert short_frame("0x7f30b4e4524a (libc.so.6)") == "0x7f30b4e4524a (libc.so.6)"
    assert short_frame("<no location>") == "<no location>"


def test_self_time_is_the_leaf_and_inclusive_counts_a_frame_once_a_sample():
    profile = top_frames(parse_collapsed(RAW))

    assert profile["samples"] == 100
    assert profile["self"] == [
        {"frame": "_run_once (asyncio/base_events.py)", "samples": 40, "percent": 40.0},
        {"frame": "encode (google/protobuf/json_format.py)", "samples": 30, "percent": 30.0},
        {"frame": "get_balance (billing/api/servicer.py)", "samples": 20, "percent": 20.0},
        {"frame": "consume (billing/api/servicer.py)", "samples": 10, "percent": 10.0},
    ]
    inclusive = {frame["frame"]: frame["samples"] for frame in profile["inclusive"]}
    assert inclusive["_run_once (asyncio/base_events.py)"] == 100
    assert inclusive["consume (billing/api/servicer.py)"] == 40
    assert inclusive["get_balance (billing/api/servicer.py)"] == 20  # recursive: once per sample, not twice


def test_the_top_is_cut_at_the_limit_ties_by_name_and_empty_profiles_are_empty():
    stacks = [(("b",), 5), (("a",), 5), (("c",), 1), ((), 7), (("d",), 0)]

    assert [f["frame"] for f in top_frames(stacks, limit=2)["self"]] == ["a", "b"]
    assert top_frames([]) == {"samples": 0, "self": [], "inclusive": [], "packages": []}


def test_the_envelope_every_sample_passes_through_is_self_time_only_and_packages_sum_self_time():
    stacks = [
        (("main (billing/entrypoints/server.py)", "Runner.run (asyncio/runners.py)"), 60),
        (("main (billing/entrypoints/server.py)", "Runner.run (asyncio/runners.py)",
          "consume (billing/service/consume.py)", "execute (psycopg/cursor_async.py)"), 30),
        (("main (billing/entrypoints/server.py)", "Runner.run (asyncio/runners.py)",
          "consume (billing/service/consume.py)"), 10),
    ]
    profile = top_frames(stacks)

    assert profile["self"][0]["frame"] == "Runner.run (asyncio/runners.py)"
    assert [f["frame"] for f in profile["inclusive"]] == [
        "consume (billing/service/consume.py)", "execute (psycopg/cursor_async.py)"]
    assert {p["frame"]: p["samples"] for p in profile["packages"]} == {
        "the event loop's C": 60, "psycopg": 30, "billing/service": 10}


def test_frame_cost_is_its_share_of_the_server_cpu_per_call():
    frames = [{"frame": "x", "samples": 25, "percent": 25.0}]

    assert frame_cost_us(frames, 640.0) == [{"frame": "x", "samples": 25, "percent": 25.0, "us_per_call": 160.0}]
    assert frame_cost_us(frames, None) == frames


def test_the_table_names_each_rpc_its_cost_and_its_top_frames():
    class NoProfile:
        stacks, rate, native, cpu_s, error = parse_collapsed(RAW), 100, False, 0.4, None

    load = {"tool": "loadgen", "requests": 8000, "rps": 1000.0, "errors": 0, "client_cpu_per_request_us": 190.0}
    row = cpu_budget.budget_row("consume", load, 5.6, 0.1, 2.4, NoProfile(), 0.0)

    assert row["server_cpu_per_call_us"] == 700.0 and row["postgres_cpu_per_call_us"] == 300.0
    assert row["profile"]["self"][0]["us_per_call"] == 280.0  # 40% of 700 us
    text = cpu_budget.table([row])
    assert "Consume" in text and "700" in text and "_run_once (asyncio/base_events.py)" in text
