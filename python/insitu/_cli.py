"""The ``insitu`` console script: the same command line as the ``insitu`` binary (``insitu
serve``, ``insitu cluster start``, and redis-server's command line for launchers such as
SmartSim), run by the native module in this process."""

import sys

from . import _native


def main() -> None:
    """Run ``insitu`` with this process' arguments and exit with its status."""
    sys.exit(_native.main(sys.argv))


if __name__ == "__main__":
    main()
