"""What the program takes from the Pulumi SDK beyond its public API, in one place
(sdk/internals.py), each piece guarded by a unit test that names it when an SDK upgrade takes it
away (tests/unit/sdk/test_internals.py)."""
