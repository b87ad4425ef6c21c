"""One module per ``amlvision`` sub-command (see ``amlvision.cli.COMMANDS``)."""
