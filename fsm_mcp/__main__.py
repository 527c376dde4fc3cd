from fsm_mcp.cli import main

main()
