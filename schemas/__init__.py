"""The JSON Schemas, shipped inside the installed package as ``pdgen.schemas``."""
