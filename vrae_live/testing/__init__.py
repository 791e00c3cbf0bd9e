"""Test harnesses shared by the tests and the benchmark scripts: a real JACK server and its
receivers (``jack.py``), and time that moves only when told to (``fake_time.py``)."""
