"""kvmnet's commands, one module per group of commands; kvmnet.cli.COMMANDS names
them, and each is imported when first run."""
