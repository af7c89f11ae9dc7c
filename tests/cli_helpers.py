"""Shared pieces of CLI tests: bad input gives one line, never a traceback; the console script
run in a real process."""

import sys


def console_command(*args: str) -> list[str]:
    """argv running `mamrl ARGS...` in a fresh interpreter, as the installed console script does
    (signals and exit codes are those of a real process, not of CliRunner)."""
    return [sys.executable, "-c", "import sys; from mamrl.cli import main; sys.exit(main())", *args]


def assert_one_line_error(result) -> None:
    """Exit code != 0, exactly one `error: ...` line on stderr, no traceback anywhere."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
