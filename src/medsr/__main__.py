"""Allow ``python -m medsr`` (and ``torchrun -m medsr``)."""

from medsr.cli import main

raise SystemExit(main())
