"""``python -m srgan`` runs the command line, as the ``srgan`` script does (handy under torchrun:
``torchrun --nproc_per_node 4 -m srgan train ...``)."""

import sys

from srgan.cli.main import main

sys.exit(main())
