from campaigner.cli import main

main()
