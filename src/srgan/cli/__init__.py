"""Command-line interface: parsing only. Each subcommand module imports its stage lazily, so
``srgan --help`` never imports torch."""
