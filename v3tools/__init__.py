"""v3tools: the Palacios/Kitten workflow as one Python toolchain (`v3`)."""

__version__ = "0.1.0"
