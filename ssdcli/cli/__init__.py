"""The ``ssd`` command line: a Typer app with one thin module per command."""
