"""What the program takes from the Pulumi SDK beyond its public API, in one place, each piece
guarded by a unit test that names it when an SDK upgrade takes it away: sdk/internals.py
(tests/unit/sdk/test_internals.py), and sdk/output_wait.py, the SDK's final wait for pending
outputs without its quadratic cost (tests/unit/sdk/test_output_wait.py)."""
