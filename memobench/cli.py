"""What every memobench command line shares: bad input is one line on stderr and an exit code.

  memobench: error: unknown spec 'mnist5k_randlabel'; did you mean mnist5k_randlabels?

Exit 2 for a bad command line (flags, spec names, --set), 1 for anything else
that stops a run before it starts (missing data, an unusable workdir).
"""

from __future__ import annotations

import sys
from typing import Callable, NoReturn


def fail(program: str, message: str, code: int) -> NoReturn:
  print(f"{program}: error: {message}", file=sys.stderr)
  sys.exit(code)


def flags_parser(program: str) -> Callable[[list[str]], list[str]]:
  """absl's flag parser for app.run, but a bad flag is one line on stderr and exit 2."""
  def parse(argv: list[str]) -> list[str]:
    from absl import flags  # pylint: disable=import-outside-toplevel
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      fail(program, str(e), 2)
  return parse
