from pipolicy_cli.entry import main

main()
