"""The composition root: wires the parts into one running controller and the `hotline` command."""
