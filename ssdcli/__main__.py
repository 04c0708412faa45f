"""``python -m ssdcli`` runs the ``ssd`` command line."""

from ssdcli.cli.app import main

if __name__ == "__main__":
    main()
