"""Harbor's own clients as judges of Berth's Harbor-compatible API: each runs
every operation Berth serves against a live Berth, and each operation's outcome
is one test (``test_go_client.py``, ``test_harborapi.py``)."""
