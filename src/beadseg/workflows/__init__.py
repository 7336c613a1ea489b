"""One function per command, each returning a typed result: what the CLI and a notebook call."""
