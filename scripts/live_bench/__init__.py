"""The parts of ``scripts/bench_live.py``, a module each: decode, voices, pad, jitter, clock and
clock_out, each with the measurement (``bench_*``), its report (``report_*``) and ``run``, the
part as the command line asks for it; common holds what they share."""
