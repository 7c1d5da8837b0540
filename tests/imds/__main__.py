from tests.imds.server import main

main()
