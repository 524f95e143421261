import sys

from ..agent.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
