from pdgen.cli import main

main()
