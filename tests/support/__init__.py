"""Local servers and fakes the tests start on 127.0.0.1 (real parts instead of mocks)."""
