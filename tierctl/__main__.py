from tierctl.cli import entry

entry()
