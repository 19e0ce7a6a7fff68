from everruns_cli.main import main

main()
