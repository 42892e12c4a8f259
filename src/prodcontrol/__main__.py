from prodcontrol.cli import main

main()
