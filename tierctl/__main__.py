from tierctl.cli import main

main()
