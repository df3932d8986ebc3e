"""What every memobench command line shares: bad input is one line on stderr and an exit code.

  memobench: error: unknown spec 'mnist5k_randlabel'; did you mean mnist5k_randlabels?

Exit 2 for a bad command line (flags, spec names, --set), 1 for anything else
that stops a run before it starts (missing data, an unusable workdir).
"""

from __future__ import annotations

import errno
import sys
from typing import Callable, NoReturn


def fail(program: str, message: str, code: int) -> NoReturn:
  print(f"{program}: error: {message}", file=sys.stderr)
  sys.exit(code)


def os_error_line(error: OSError) -> str:
  """One line for an OSError that stops a command (a full disk, a read-only mount, ...)."""
  where = f" ({error.filename})" if error.filename else ""
  line = f"{error.strerror or error}{where}"
  if error.errno in (errno.ENOSPC, errno.EDQUOT):
    line += ("; free some space and rerun the same command: finished results are kept "
             "and an interrupted run resumes from its last checkpoint")
  return line


_HELP = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull")


def parse_shard(text: str | None) -> tuple[int, int] | None:
  """'INDEX/COUNT' (e.g. '2/8', INDEX from 0) -> (2, 8); None for None or ''.

  Raises ValueError with a one-line message otherwise.
  """
  if not text:
    return None
  index, sep, count = text.partition("/")
  try:
    index, count = int(index), int(count)
  except ValueError:
    index, count = -1, 0
  if not sep or count < 1 or not 0 <= index < count:
    raise ValueError(f"--shard={text}: expected INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4")
  return index, count


def flags_parser(program: str) -> Callable[[list[str]], list[str]]:
  """absl's flag parser for app.run, but a bad flag is one line on stderr and exit 2.

  A help request prints the usage to stdout and exits 0 (absl exits 1: a help
  request is not an error).
  """
  def parse(argv: list[str]) -> list[str]:
    from absl import app, flags  # pylint: disable=import-outside-toplevel
    if any(arg in _HELP for arg in argv[1:]):
      app.usage(shorthelp="--helpfull" not in argv[1:], writeto_stdout=True, exitcode=0)
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      fail(program, str(e), 2)
  return parse
