"""The training loop keeps its behaviour: the golden run (tests/golden/golden_run.py) is re-run and
compared with the pinned records: counters exact, losses, Q means and probe Q to 1e-6."""
import json

import numpy as np

from tests.golden import golden_run as golden

TOLERANCE = 1e-6


def _pinned():
    with open(golden.GOLDEN_FILE) as f:
        return json.load(f)


def _assert_records_match(pinned, fresh):
    assert len(fresh) == len(pinned), f"{len(fresh)} records, pinned {len(pinned)}"
    for index, (want, got) in enumerate(zip(pinned, fresh)):
        assert set(got) == set(want), f"record {index}: keys {sorted(got)} vs pinned {sorted(want)}"
        for key, value in want.items():
            if isinstance(value, float):
                assert abs(got[key] - value) <= TOLERANCE * max(1.0, abs(value)), (
                    f"record {index} ({want['kind']} at {want['frames']} frames): {key} {got[key]!r}, pinned {value!r}")
            else:
                assert got[key] == value, f"record {index}: {key} {got[key]!r}, pinned {value!r}"


def test_the_serial_golden_run_is_unchanged(tmp_path):
    pinned = _pinned()
    assert pinned["args"] == golden.ARGS, "the golden run's arguments changed: re-pin it with --write"
    fresh = golden.golden_run(str(tmp_path / "golden"))
    _assert_records_match(pinned["records"], fresh["records"])
    assert fresh["summary"] == pinned["summary"]
    np.testing.assert_allclose(fresh["q"], pinned["q"], atol=TOLERANCE, rtol=0)


def test_the_concurrent_engine_keeps_the_golden_counters(tmp_path):
    pinned = _pinned()
    assert golden.concurrent_counters(str(tmp_path / "concurrent")) == pinned["concurrent_summary"]
    # and they are the serial engine's: the rate limiter holds the same ratio
    assert pinned["concurrent_summary"] == pinned["summary"]
