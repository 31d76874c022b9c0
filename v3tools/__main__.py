from v3tools.cli import main

main()
